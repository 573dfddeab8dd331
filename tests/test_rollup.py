"""Per-km roll-up, per-area sums and headline figures on hand-made detections (km 800–805).

The builders here (``make_detections``, ``make_tiles``, ``make_run_folder``) are also used by
``test_report.py`` and ``test_notebook.py`` (loaded by file path).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from bordewatch.border import GEOD, Border, default_border, hrw_areas
from bordewatch.outputs import DETECTION_COLUMNS
from bordewatch.rollup import SEGMENT_COLUMNS, headline, per_area, rollup_per_km

KM_RANGE = (800.0, 805.0)


def border() -> Border:
    return default_border()


def _utm(b: Border) -> pyproj.CRS:
    return b.utm_crs(*KM_RANGE)


def _to_4326(geom: shapely.Geometry, crs: pyproj.CRS) -> shapely.Geometry:
    tf = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1])))


def line_along(b: Border, km0: float, km1: float, offset_m: float) -> shapely.LineString:
    """A line parallel to the border from km0 to km1 at a signed offset (positive: left)."""
    crs = _utm(b)
    base = b.line_in(crs, (km0, km1))
    line = shapely.offset_curve(base, offset_m) if offset_m else base
    return _to_4326(line, crs)


def point_near(b: Border, km: float, offset_m: float) -> shapely.Point:
    line = line_along(b, km - 0.02, km + 0.02, offset_m)
    return line.interpolate(0.5, normalized=True)


# (class, status, km0, km1 or None for points, offset_m, score)
SPEC: list[tuple[str, str, float, float | None, float]] = [
    ("fence", "existing", 800.0, 801.0, 40.0),
    ("fence", "new", 801.25, 801.75, 60.0),  # covers exactly half of km 801
    ("fence", "new", 801.0, 802.9, -80.0),  # spans two kms, right side
    ("fence", "new", 801.1, 801.9, -300.0),  # a second layer behind the one above
    ("fence", "upgraded", 803.9, 804.8, 45.0),
    ("fence", "removed", 800.2, 800.5, 120.0),
    ("patrol_lane", "new", 800.5, 802.5, 20.0),
    ("patrol_lane", "existing", 804.1, 804.9, 25.0),
    ("watchtower", "new", 800.3, None, 50.0),
    ("watchtower", "new", 801.4, None, -90.0),
    ("watchtower", "new", 801.6, None, -90.0),
    ("watchtower", "existing", 802.5, None, 30.0),
    ("watchtower", "removed", 802.8, None, 30.0),
    ("watchtower", "upgraded", 804.5, None, 55.0),
]


def make_detections(b: Border) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    for i, (cls, status, km0, km1, off) in enumerate(SPEC):
        if km1 is None:
            geom = point_near(b, km0, off)
        else:
            geom = line_along(b, km0, km1, off)
        geoms.append(geom)
        rows.append(
            {
                "id": f"d{i:03d}",
                "class": cls,
                "status": status,
                "score": round(0.5 + 0.03 * i, 3),
                "method": "classical",
            }
        )
    gdf = gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4326")
    xy = np.array(
        [
            (g if g.geom_type == "Point" else g.interpolate(0.5, normalized=True)).coords[0]
            for g in gdf.geometry
        ]
    )
    km, off, _ = b.locate(xy[:, 0], xy[:, 1])
    gdf["km"] = np.round(km, 3)
    gdf["offset_m"] = np.round(off, 1)
    gdf["length_m"] = [
        round(GEOD.geometry_length(g), 1) if g.geom_type != "Point" else None for g in gdf.geometry
    ]
    gdf["tile"] = [f"PRK-CHN-{np.floor(k):08.3f}" for k in km]
    return gdf[list(DETECTION_COLUMNS)]


TILE_FRACTIONS = {800: 1.0, 801: 1.0, 802: 0.5, 803: 0.0, 804: 1.0}


def make_tiles(b: Border) -> gpd.GeoDataFrame:
    crs = _utm(b)
    rows, geoms = [], []
    for k, frac in TILE_FRACTIONS.items():
        failed = k == 803
        geoms.append(b.line_in(crs, (k, k + 1)).buffer(1000.0, cap_style="flat"))
        rows.append(
            {
                "id": f"PRK-CHN-{float(k):08.3f}",
                "km_start": float(k),
                "km_end": float(k + 1),
                "crs": crs.to_string(),
                "gsd_m": 2.0,
                "analysed_fraction": frac,
                "shift_row": 0.1 * (k - 800),
                "shift_col": -0.2,
                "shift_quality": 0.9,
                "status": "failed" if failed else "done",
                "error": "all nodata in after" if failed else "",
                "seconds": 1.5,
            }
        )
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=crs)


# ---------------------------------------------------------------------- run folder
def _write_imagery(
    path: Path, b: Border, det: gpd.GeoDataFrame, statuses: tuple[str, ...], gsd: float
) -> dict[str, object]:
    import hashlib

    import rasterio
    from rasterio.features import rasterize
    from rasterio.transform import from_origin

    crs = _utm(b)
    x0, y0, x1, y1 = b.line_in(crs, KM_RANGE).buffer(1200.0).bounds
    width, height = int((x1 - x0) / gsd), int((y1 - y0) / gsd)
    transform = from_origin(x0, y1, gsd, gsd)
    rng = np.random.default_rng(0)
    img = (90 + rng.normal(0, 6, (3, height, width))).clip(0, 255).astype(np.uint8)
    river = rasterize(
        [(b.line_in(crs, KM_RANGE).buffer(25.0), 1)], (height, width), transform=transform
    )
    img[:, river == 1] = 50
    sel = det[det["status"].isin(statuses)].to_crs(crs)
    shapes = [
        (g.buffer(3.0 if c == "fence" else 6.0 if c == "patrol_lane" else 5.0), 1)
        for g, c in zip(sel.geometry, sel["class"])
    ]
    if shapes:
        mask = rasterize(shapes, (height, width), transform=transform)
        img[:, mask == 1] = 220
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 3,
        "dtype": "uint8",
        "crs": crs,
        "transform": transform,
        "compress": "deflate",
        "tiled": True,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(img)
    data = path.read_bytes()
    return {
        "path": str(path),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "crs": crs.to_string(),
        "gsd_m": gsd,
        "bands": ["red", "green", "blue"],
        "dtype": "uint8",
    }


def make_run_folder(run: Path, *, imagery: bool = True) -> Path:
    """Write a small finished run folder (the pipeline's output contract) for km 800–805."""
    b = border()
    run.mkdir(parents=True, exist_ok=True)
    det = make_detections(b)
    tiles = make_tiles(b)
    crs = _utm(b)
    det.to_file(run / "detections.geojson", driver="GeoJSON")
    gpkg = run / "bordewatch.gpkg"
    det.to_crs(crs).to_file(gpkg, layer="detections", driver="GPKG")
    tiles.to_file(gpkg, layer="tiles", driver="GPKG")
    b.to_geodataframe().to_crs(crs).to_file(gpkg, layer="border", driver="GPKG")
    segs = rollup_per_km(det, tiles, b, KM_RANGE)
    segs.to_crs(crs).to_file(gpkg, layer="segments", driver="GPKG")
    inputs: dict[str, list[dict[str, object]]] = {"before": [], "after": []}
    if imagery:
        inputs["before"].append(
            _write_imagery(run / "before.tif", b, det, ("existing", "removed", "upgraded"), 4.0)
        )
        inputs["after"].append(
            _write_imagery(run / "after.tif", b, det, ("existing", "new", "upgraded"), 4.0)
        )
    meta = {
        "bordewatch_version": "0.1.0",
        "created": "2024-01-01T00:00:00Z",
        "command": "bordewatch detect --before before.tif --after after.tif --km 800:805",
        "inputs": inputs,
        "border": {
            "name": b.name,
            "source": b.source,
            "length_km": round(b.length_km, 3),
            "left": b.left,
            "right": b.right,
        },
        "km_range": list(KM_RANGE),
        "parameters": {
            "corridor_m": 1000,
            "side": "both",
            "tile_km": 1.0,
            "gsd_m": 2.0,
            "method": "classical",
        },
        "tiles": {
            "total": 5,
            "done": 4,
            "failed": [{"id": "PRK-CHN-0803.000", "error": "all nodata in after"}],
            "skipped": [],
        },
        "timings": {"total_s": 12.0},
        "crs": crs.to_string(),
    }
    (run / "run.json").write_text(json.dumps(meta, indent=1))
    return run


# ---------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def data() -> tuple[Border, gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    b = border()
    det = make_detections(b)
    tiles = make_tiles(b)
    return b, det, tiles, rollup_per_km(det, tiles, b, KM_RANGE)


def test_every_km_present_with_contract_columns(data) -> None:
    _, _, _, segs = data
    assert list(segs.columns) == [*SEGMENT_COLUMNS, "geometry"]
    assert segs["km_start"].tolist() == [800.0, 801.0, 802.0, 803.0, 804.0]
    assert segs["km_end"].tolist() == [801.0, 802.0, 803.0, 804.0, 805.0]
    assert segs.crs.equals("EPSG:4326")
    assert all(g.geom_type == "LineString" and g.length > 0 for g in segs.geometry)


def test_empty_detections_still_give_every_km() -> None:
    b = border()
    empty = gpd.GeoDataFrame({"class": [], "status": []}, geometry=[], crs="EPSG:4326")
    segs = rollup_per_km(empty, make_tiles(b).iloc[:0], b, (800.0, 802.5))
    assert segs["km_start"].tolist() == [800.0, 801.0, 802.0]
    assert segs["km_end"].tolist() == [801.0, 802.0, 802.5]  # last row partial
    assert (segs[list(SEGMENT_COLUMNS[2:])].to_numpy() == 0).all()


def test_analysed_is_overlap_weighted(data) -> None:
    b, det, tiles, segs = data
    assert segs["analysed"].tolist() == [1.0, 1.0, 0.5, 0.0, 1.0]
    # A tile straddling two kms contributes to both by overlap.
    t = tiles.iloc[:1].copy()
    t["km_start"], t["km_end"], t["analysed_fraction"] = 800.5, 801.5, 0.8
    got = rollup_per_km(det, t, b, (800.0, 802.0))["analysed"].tolist()
    assert got == pytest.approx([0.4, 0.4])


def test_fenced_fractions(data) -> None:
    _, _, _, segs = data
    fb = segs["fenced_before"].to_numpy()
    fa = segs["fenced_after"].to_numpy()
    # km 800: existing fence over the whole km (before and after); removed fence inside it.
    assert fb[0] == pytest.approx(1.0, abs=0.01) and fa[0] == pytest.approx(1.0, abs=0.01)
    # km 801 before: nothing; after: the new right-side fence covers it all.
    assert fb[1] == pytest.approx(0.0, abs=1e-9) and fa[1] == pytest.approx(1.0, abs=0.01)
    # km 804: upgraded fence 803.9–804.8 covers 0.8 of it, before and after.
    assert fb[4] == pytest.approx(0.8, abs=0.01) and fa[4] == pytest.approx(0.8, abs=0.01)


def test_half_km_fence_gives_half() -> None:
    b = border()
    det = gpd.GeoDataFrame(
        {"class": ["fence"], "status": ["new"]},
        geometry=[line_along(b, 801.25, 801.75, 60.0)],
        crs="EPSG:4326",
    )
    segs = rollup_per_km(det, make_tiles(b), b, KM_RANGE)
    assert segs["fenced_after"].iloc[1] == pytest.approx(0.5, abs=0.005)
    assert segs["fenced_before"].sum() == 0
    assert segs["fenced_after"].drop(index=1).sum() == 0
    # Only the left side counts with side="left"; the right side sees nothing.
    right = rollup_per_km(det, make_tiles(b), b, KM_RANGE, side="right")
    assert right["fenced_after"].sum() == 0 and right["new_fence_m"].sum() == 0


def _geodesic_m(geoms: gpd.GeoSeries) -> float:
    return float(sum(GEOD.geometry_length(g) for g in geoms))


def test_line_metres_conserved(data) -> None:
    _, det, _, segs = data
    for col, cls, statuses in (
        ("new_fence_m", "fence", ["new"]),
        ("upgraded_fence_m", "fence", ["upgraded"]),
        ("new_patrol_lane_m", "patrol_lane", ["new", "upgraded"]),
    ):
        sel = det[(det["class"] == cls) & det["status"].isin(statuses)]
        expected = _geodesic_m(sel.geometry)
        assert expected > 0
        assert segs[col].sum() == pytest.approx(expected, rel=1e-3), col
    # The 801.0–802.9 fence is split at km 802 by chainage: ~900 m of it lands in km 802.
    assert segs["new_fence_m"].iloc[2] == pytest.approx(900.0, rel=0.05)
    assert segs["new_fence_m"].iloc[3] == 0.0


def test_tower_counts_conserved(data) -> None:
    _, det, _, segs = data
    towers = det[det["class"] == "watchtower"]
    assert (
        segs["watchtowers_before"].sum()
        == towers["status"].isin(["existing", "removed", "upgraded"]).sum()
    )
    assert (
        segs["watchtowers_after"].sum()
        == towers["status"].isin(["existing", "new", "upgraded"]).sum()
    )
    assert segs["new_watchtowers"].tolist() == [1, 2, 0, 0, 0]
    assert segs["watchtowers_after"].tolist() == [1, 2, 1, 0, 1]


def test_per_area_whole_run_and_hoeryong(data) -> None:
    _, _, _, segs = data
    table = per_area(segs, hrw_areas())
    assert table["area"].tolist() == ["Hoeryong", "whole run"]
    whole = table.iloc[1]
    assert whole["border_km"] == pytest.approx(5.0, abs=0.01)
    assert whole["analysed_km"] == pytest.approx(3.5, abs=0.01)
    assert whole["new_fence_km"] == pytest.approx(segs["new_fence_m"].sum() / 1000, abs=0.01)
    assert whole["new_watchtowers"] == 3
    # Hoeryong (796.2–849.7) holds the whole run.
    pd.testing.assert_series_equal(
        table.iloc[0].drop("area"), whole.drop("area"), check_names=False
    )
    only = per_area(segs)
    assert only["area"].tolist() == ["whole run"]


def test_per_area_partial_km_range_and_polygons(data) -> None:
    b, _, _, segs = data
    areas = gpd.GeoDataFrame(
        {"area": ["a", "far"], "km_start": [801.0, 900.0], "km_end": [802.5, 910.0]}
    )
    table = per_area(segs, areas)
    assert table["area"].tolist() == ["a", "whole run"]
    assert table.iloc[0]["border_km"] == pytest.approx(1.5)
    assert table.iloc[0]["analysed_km"] == pytest.approx(1.25)
    poly = b.line_in(_utm(b), (801.0, 802.0)).buffer(2000.0, cap_style="flat")
    polys = gpd.GeoDataFrame({"name": ["box"]}, geometry=[poly], crs=_utm(b))
    ptable = per_area(segs, polys)
    assert ptable.iloc[0]["area"] == "box"
    assert ptable.iloc[0]["border_km"] == pytest.approx(1.0, abs=0.02)


def test_headline_figures(data) -> None:
    b, det, _, segs = data
    h = headline(segs, det, b, KM_RANGE)
    assert h.border_km == pytest.approx(5.0)
    assert h.analysed_km == pytest.approx(3.5)
    assert h.analysed_pct == pytest.approx(70.0)
    assert h.new_fence_km == pytest.approx(segs["new_fence_m"].sum() / 1000)
    assert (h.watchtowers_before, h.watchtowers_after, h.new_watchtowers) == (3, 5, 3)
    # Layers: the -300 m fence sits 220 m behind the -80 m new fence; the -80 m fence is nearer
    # the border, so only the outer one (all of it) counts as a second layer.
    outer_km = GEOD.geometry_length(det.geometry.iloc[3]) / 1000
    assert h.layered_new_fence_km == pytest.approx(outer_km, rel=0.02)
    lines = h.lines()
    assert len(lines) == 6
    assert lines[0].startswith("Imagery for both dates covers 3.5 of 5.0 km")
    assert "5 after (3 new" in lines[4]
    fence_after_m = _geodesic_m(
        det[
            (det["class"] == "fence") & det["status"].isin(["existing", "new", "upgraded"])
        ].geometry
    )
    assert h.tower_spacing_fence_m == pytest.approx(fence_after_m / 5, rel=1e-3)


def test_oblique_fence_is_not_its_own_layer() -> None:
    b = border()
    crs = _utm(b)
    base = b.line_in(crs, (801.0, 801.5))
    p0 = base.interpolate(0.0)
    p1 = shapely.offset_curve(base, 400.0).interpolate(1.0, normalized=True)
    oblique = _to_4326(shapely.LineString([p0, p1]), crs)
    det = gpd.GeoDataFrame(
        {"class": ["fence"], "status": ["new"]}, geometry=[oblique], crs="EPSG:4326"
    )
    segs = rollup_per_km(det, make_tiles(b), b, KM_RANGE)
    assert headline(segs, det, b, KM_RANGE).layered_new_fence_km == 0.0


def test_bad_side_is_refused(data) -> None:
    b, det, tiles, _ = data
    from bordewatch.errors import BordewatchError

    with pytest.raises(BordewatchError, match="side"):
        rollup_per_km(det, tiles, b, KM_RANGE, side="north")
