"""Merge of per-tile detections and the output writers (GeoJSON, GPKG, CSV, change COG)."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import rasterio
import shapely
from affine import Affine

from bordewatch import outputs
from bordewatch.border import GEOD, Border
from bordewatch.results import Detection, TileResult
from bordewatch.tiling import Tile

# A border along 42°N across the UTM 51/52 boundary (126°E); tiles split at 126°E.
BORDER = Border(shapely.LineString([(125.90, 42.0), (126.10, 42.0)]), name="T")
EDGE_LON = 126.0


def _to(crs: str, geom: shapely.Geometry) -> shapely.Geometry:
    tf = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1])))


def _box_lonlat(lon0: float, lon1: float) -> shapely.Polygon:
    return shapely.segmentize(shapely.box(lon0, 41.99, lon1, 42.01), 0.0005)


def _tile(index: int, crs: str, lon0: float, lon1: float, gsd_m: float = 2.0) -> Tile:
    core = _to(crs, _box_lonlat(lon0, lon1))
    minx, miny, maxx, maxy = core.buffer(60.0).bounds
    width, height = int((maxx - minx) / gsd_m), int((maxy - miny) / gsd_m)
    # A slightly rotated grid, as the planner makes along a diagonal border.
    transform = Affine.translation(minx, maxy) @ Affine.rotation(-2.0) @ Affine.scale(gsd_m, -gsd_m)
    km0 = float(BORDER.km_of([lon0], [42.0])[0])
    km1 = float(BORDER.km_of([lon1], [42.0])[0])
    return Tile(
        id=f"T-{km0:08.3f}",
        index=index,
        km_start=km0,
        km_end=km1,
        crs=crs,
        transform=tuple(transform)[:6],
        width=width,
        height=height,
        gsd_m=gsd_m,
        core=core,
    )


TILE_A = _tile(0, "EPSG:32651", 125.96, EDGE_LON)
TILE_B = _tile(1, "EPSG:32652", EDGE_LON, 126.04)


def _det(cls: str, status: str, score: float, geom: shapely.Geometry, crs: str) -> Detection:
    return Detection(cls, status, score, _to(crs, geom))


def _result(tile: Tile, dets: list[Detection]) -> TileResult:
    return TileResult(
        tile_id=tile.id,
        crs=tile.crs,
        method="classical",
        detections=tuple(dets),
        analysed=tile.core,
        analysed_fraction=1.0,
    )


FENCE = shapely.segmentize(shapely.LineString([(125.97, 42.002), (126.03, 42.002)]), 0.001)
FENCE_2 = shapely.segmentize(shapely.LineString([(125.97, 42.00209), (126.03, 42.00209)]), 0.001)
LANE = shapely.LineString([(125.985, 41.998), (126.015, 41.998)])
TOWER_EDGE = shapely.Point(EDGE_LON, 42.003)  # on the shared core edge: seen by both tiles
TOWER_A = shapely.Point(125.99, 42.004)


def _results() -> list[TileResult]:
    """Both tiles see the whole fence, lane and the tower on the edge (their grids overlap)."""
    out = []
    for tile in (TILE_A, TILE_B):
        c = tile.crs
        dets = [
            _det("fence", "new", 0.9, FENCE, c),
            _det("fence", "new", 0.7, FENCE_2, c),  # a parallel layer 10 m north
            _det("patrol_lane", "new", 0.8, LANE, c),
            _det("watchtower", "new", 0.6, TOWER_EDGE, c),
            _det("watchtower", "new", 0.95, TOWER_A, c),
            # the same tower seen twice by one detector, 1 m apart: one must go
            _det("watchtower", "new", 0.5, shapely.Point(125.99 + 1.0 / 82_800, 42.004), c),
        ]
        out.append(_result(tile, dets))
    return out


def _merged(results: list[TileResult] | None = None) -> gpd.GeoDataFrame:
    return outputs.merge_detections(results or _results(), [TILE_A, TILE_B], BORDER)


# ---------------------------------------------------------------------- merge
def test_merge_schema_and_crs() -> None:
    gdf = _merged()
    assert tuple(gdf.columns) == outputs.DETECTION_COLUMNS
    assert gdf.crs.equals("EPSG:4326")
    assert gdf["id"].is_unique
    assert set(gdf["method"]) == {"classical"}


def test_merge_joins_lines_across_utm_zones() -> None:
    gdf = _merged()
    fences = gdf[gdf["class"] == "fence"].sort_values("offset_m")
    assert len(fences) == 2  # two parallel layers 10 m apart stay separate
    for geom, expected in zip(fences.geometry, (FENCE, FENCE_2)):
        assert geom.geom_type == "LineString"
        assert abs(GEOD.geometry_length(geom) - GEOD.geometry_length(expected)) < 0.5
        assert shapely.hausdorff_distance(geom, expected) < 1e-6  # degrees: ~0.1 m
    assert np.allclose(fences["length_m"], [GEOD.geometry_length(FENCE)] * 2, atol=0.5)
    # km of the midpoint (126.0 E is the middle of the line) and offset north = left of eastward
    assert np.allclose(fences["km"], BORDER.length_km / 2, atol=0.01)
    expected_offset = BORDER.locate([EDGE_LON], [42.002])[1][0]
    assert expected_offset > 200
    assert fences["offset_m"].iloc[0] == pytest.approx(expected_offset, abs=0.5)
    assert fences["offset_m"].diff().iloc[1] == pytest.approx(10.0, abs=0.2)
    assert fences["tile"].isin([TILE_A.id, TILE_B.id]).all()


def test_merge_drops_duplicate_points() -> None:
    gdf = _merged()
    towers = gdf[gdf["class"] == "watchtower"]
    assert len(towers) == 2
    assert towers["length_m"].isna().all()
    near_a = shapely.distance(np.asarray(towers.geometry.array), TOWER_A) < 1e-4
    assert towers.loc[near_a, "score"].tolist() == [0.95]  # the higher score survives


def test_merge_clips_to_cores() -> None:
    lonlat = shapely.LineString([(125.95, 42.0), (126.05, 42.0)])
    res = [_result(TILE_A, [_det("fence", "new", 0.9, lonlat, TILE_A.crs)])]
    gdf = outputs.merge_detections(res, [TILE_A, TILE_B], BORDER)
    (geom,) = gdf.geometry
    lon = shapely.get_coordinates(geom)[:, 0]
    assert lon.min() == pytest.approx(125.96, abs=1e-7)
    assert lon.max() == pytest.approx(EDGE_LON, abs=1e-7)


def test_merge_does_not_join_other_status_or_misaligned() -> None:
    c = TILE_A.crs
    a = shapely.LineString([(125.97, 42.0), (125.98, 42.0)])
    b = shapely.LineString([(125.98, 42.0), (125.99, 42.0)])  # touches a, other status
    perp = shapely.LineString([(125.98, 42.0), (125.98, 42.005)])  # touches at a right angle
    res = [
        _result(
            TILE_A,
            [
                _det("fence", "new", 1.0, a, c),
                _det("fence", "existing", 1.0, b, c),
                _det("fence", "new", 1.0, perp, c),
            ],
        )
    ]
    gdf = outputs.merge_detections(res, [TILE_A, TILE_B], BORDER)
    assert len(gdf) == 3


def test_merge_joins_small_gap_in_line() -> None:
    c = TILE_A.crs
    a = shapely.LineString([(125.97, 42.0), (125.98, 42.0)])
    b = shapely.LineString([(125.98 + 3.0 / 82_800, 42.0), (125.99, 42.0)])  # a 3 m gap
    res = [_result(TILE_A, [_det("fence", "new", 0.5, b, c), _det("fence", "new", 1.0, a, c)])]
    gdf = outputs.merge_detections(res, [TILE_A, TILE_B], BORDER)
    assert len(gdf) == 1
    assert gdf["score"].iloc[0] == pytest.approx(0.75, abs=0.01)  # length-weighted
    assert gdf["length_m"].iloc[0] == pytest.approx(GEOD.geometry_length(FENCE) / 3, rel=0.01)


def test_merge_drops_edge_stubs_shorter_than_min_line() -> None:
    # a line that pokes 3 m past tile A's core edge leaves a 3 m stub in B's core; B did not see it
    stub_end = EDGE_LON + 3.0 / 82_800
    line = shapely.LineString([(125.97, 42.005), (stub_end, 42.005)])
    merged = outputs.merge_detections(
        [_result(TILE_A, [_det("fence", "new", 0.9, line, TILE_A.crs)])],
        [TILE_A, TILE_B],
        BORDER,
    )
    assert len(merged) == 1  # only A's 2.5 km piece; A's own 3 m outside its core is clipped
    assert merged["length_m"].iloc[0] > 2000
    short = shapely.LineString([(125.99, 42.005), (125.99 + 8.0 / 82_800, 42.005)])  # 8 m
    kept = outputs.merge_detections(
        [_result(TILE_A, [_det("fence", "new", 0.9, short, TILE_A.crs)])],
        [TILE_A, TILE_B],
        BORDER,
        min_line_m=5.0,
    )
    assert len(kept) == 1 and 7.0 < kept["length_m"].iloc[0] < 9.0
    dropped = outputs.merge_detections(
        [_result(TILE_A, [_det("fence", "new", 0.9, short, TILE_A.crs)])], [TILE_A, TILE_B], BORDER
    )
    assert dropped.empty


def test_merge_empty() -> None:
    gdf = outputs.merge_detections([], [TILE_A, TILE_B], BORDER)
    assert len(gdf) == 0
    assert tuple(gdf.columns) == outputs.DETECTION_COLUMNS
    assert gdf.crs.equals("EPSG:4326")


def test_merge_is_independent_of_order() -> None:
    a = _merged()
    res = [
        TileResult(**{**_asdict(r), "detections": tuple(reversed(r.detections))})
        for r in reversed(_results())
    ]
    b = _merged(res)
    assert a["id"].tolist() == b["id"].tolist()
    assert a.geometry.geom_equals_exact(b.geometry, 1e-9).all()


def _asdict(r: TileResult) -> dict[str, object]:
    return {name: getattr(r, name) for name in r.__slots__}


# ---------------------------------------------------------------------- GeoJSON
def test_geojson_rfc7946(tmp_path: Path) -> None:
    path = tmp_path / "detections.geojson"
    outputs.write_geojson(_merged(), path)
    doc = json.loads(path.read_text())
    assert doc["type"] == "FeatureCollection"
    assert "crs" not in doc
    assert len(doc["features"]) == 5  # 2 fences, 1 lane, 2 towers
    for feature in doc["features"]:
        props = feature["properties"]
        assert list(props) == list(outputs.DETECTION_COLUMNS[:-1])
        coords = np.atleast_2d(np.array(feature["geometry"]["coordinates"], dtype=float))
        assert (np.abs(coords[:, 0]) <= 180).all() and (np.abs(coords[:, 1]) <= 90).all()
        assert (coords[:, 0] > 125).all() and (coords[:, 1] < 43).all()  # lon, lat order
    decimals = [
        len(m) for m in re.findall(r"\d+\.(\d+)", json.dumps(doc["features"][0]["geometry"]))
    ]
    assert max(decimals) <= 7
    back = gpd.read_file(path)
    assert len(back) == 5 and back.crs.equals("EPSG:4326")


def test_geojson_byte_identical(tmp_path: Path) -> None:
    outputs.write_geojson(_merged(), tmp_path / "a.geojson")
    shuffled = _merged(list(reversed(_results())))
    outputs.write_geojson(shuffled.iloc[::-1], tmp_path / "b.geojson")
    assert (tmp_path / "a.geojson").read_bytes() == (tmp_path / "b.geojson").read_bytes()


def test_geojson_polygon_right_hand_rule_and_empty(tmp_path: Path) -> None:
    cw = shapely.Polygon([(126, 42), (126, 42.1), (126.1, 42.1), (126.1, 42)])
    gdf = gpd.GeoDataFrame({"v": [np.nan]}, geometry=[cw], crs="EPSG:4326")
    outputs.write_geojson(gdf, tmp_path / "p.geojson")
    doc = json.loads((tmp_path / "p.geojson").read_text())
    ring = shapely.LinearRing(doc["features"][0]["geometry"]["coordinates"][0])
    assert ring.is_ccw
    assert doc["features"][0]["properties"] == {"v": None}
    outputs.write_geojson(outputs.empty_detections(), tmp_path / "e.geojson")
    assert json.loads((tmp_path / "e.geojson").read_text())["features"] == []
    assert len(gpd.read_file(tmp_path / "e.geojson")) == 0


# ---------------------------------------------------------------------- CSV
def test_csv_deterministic(tmp_path: Path) -> None:
    df = pd.DataFrame({"km_start": [0.0, 1.0], "x": [1 / 3, np.nan], "ok": [True, False]})
    outputs.write_csv(df, tmp_path / "c.csv")
    assert (tmp_path / "c.csv").read_text() == "km_start,x,ok\n0.0,0.333333,true\n1.0,,false\n"


# ---------------------------------------------------------------------- GPKG
def _layers() -> dict[str, gpd.GeoDataFrame]:
    segments = BORDER.segments(step_km=5.0)
    segments["new_fence_m"] = 1.0
    segments["analysed"] = 1.0
    tiles = gpd.GeoDataFrame(
        {"id": [TILE_A.id], "analysed_fraction": [1.0], "status": ["done"]},
        geometry=[TILE_A.core],
        crs=TILE_A.crs,
    )
    return {
        "detections": _merged(),
        "segments": segments,
        "tiles": tiles,
        "border": BORDER.to_geodataframe(),
    }


def test_gpkg_layers_version_styles(tmp_path: Path) -> None:
    path = tmp_path / "bordewatch.gpkg"
    outputs.write_gpkg(path, _layers(), crs="EPSG:32652")
    names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    assert {"detections", "segments", "tiles", "border"} <= set(names)
    det = gpd.read_file(path, layer="detections")
    assert len(det) == 5 and det.crs.to_epsg() == 32652
    assert gpd.read_file(path, layer="tiles").crs.to_epsg() == 32652
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
        assert con.execute("PRAGMA user_version").fetchone()[0] == 10300
        rows = con.execute(
            "SELECT f_table_name, f_geometry_column, useAsDefault, styleQML FROM layer_styles"
        ).fetchall()
        stamps = {r[0] for r in con.execute("SELECT last_change FROM gpkg_contents")}
    finally:
        con.close()
    assert {r[0] for r in rows} == {"detections", "segments", "tiles", "border"}
    assert all(
        r[1] == "geom" and r[2] == 1 and r[3].lstrip().startswith("<!DOCTYPE qgis") for r in rows
    )
    assert stamps == {outputs.FIXED_TIMESTAMP}
    outputs.write_gpkg(tmp_path / "again.gpkg", _layers(), crs="EPSG:32652")
    assert (tmp_path / "again.gpkg").read_bytes() == path.read_bytes()
    assert not list(tmp_path.glob(".tmp-*"))


def test_styles_parse_and_copy(tmp_path: Path) -> None:
    written = outputs.write_styles(tmp_path)
    assert sorted(p.name for p in written) == [f"{n}.qml" for n in sorted(outputs.STYLE_LAYERS)]
    for path in written:
        assert path.parent == tmp_path / "styles"
        root = ET.parse(path).getroot()
        assert root.tag == "qgis" and root.find("renderer-v2") is not None
    rules = ET.parse(tmp_path / "styles" / "detections.qml").getroot().iter("rule")
    filters = [r.get("filter") for r in rules]
    assert "\"class\" = 'watchtower' AND \"status\" = 'new'" in filters
    assert len(filters) == 12


# ---------------------------------------------------------------------- change COG
def _write_tile_rasters(tmp_path: Path) -> list[tuple[str, Tile]]:
    parts = []
    for tile, value in ((TILE_A, 0.2), (TILE_B, 0.8)):
        arr = np.full(tile.shape, value, dtype=np.float32)
        arr[:5, :5] = np.nan
        path = tmp_path / f"{tile.id}.change.tif"
        outputs.write_tile_raster(arr, tile, path)
        parts.append((str(path), tile))
    return parts


def test_tile_raster(tmp_path: Path) -> None:
    tile = _tile(0, "EPSG:32651", 125.96, 125.97, gsd_m=0.5)
    arr = np.random.default_rng(0).random(tile.shape, dtype=np.float32)
    outputs.write_tile_raster(arr, tile, tmp_path / "t.tif")
    with rasterio.open(tmp_path / "t.tif") as ds:
        assert ds.crs.to_epsg() == 32651
        assert ds.res == pytest.approx((2.0, 2.0))  # averaged 4 x 4
        assert ds.transform.b != 0  # rotated grid kept
        assert ds.profile["compress"].lower() == "zstd"
        block = ds.read(1)[:2, :2]
    assert np.allclose(
        block,
        [[arr[:4, :4].mean(), arr[:4, 4:8].mean()], [arr[4:8, :4].mean(), arr[4:8, 4:8].mean()]],
        atol=1e-6,
    )


def test_change_cog(tmp_path: Path) -> None:
    out = tmp_path / "change.tif"
    outputs.write_change_cog(_write_tile_rasters(tmp_path), out, crs="EPSG:32652", gsd_m=1.0)
    with rasterio.open(out) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.profile["tiled"] and ds.overviews(1)
        assert ds.dtypes[0] == "float32" and np.isnan(ds.nodata)
        assert ds.crs.to_epsg() == 32652 and ds.transform.b == 0 and ds.res == (2.0, 2.0)
        data = ds.read(1)
        samples = {}
        for name, lon in (("a", 125.98), ("b", 126.02)):
            x, y = _to("EPSG:32652", shapely.Point(lon, 42.0)).coords[0]
            row, col = ds.index(x, y)
            samples[name] = data[row, col]
    assert samples["a"] == pytest.approx(0.2, abs=1e-5)
    assert samples["b"] == pytest.approx(0.8, abs=1e-5)
    assert np.isnan(data).any()  # outside the cores
    assert np.nanmax(data) <= 1.0 and np.nanmin(data) >= 0.0
    assert not list(tmp_path.glob(".tmp-*"))


def test_change_cog_no_parts(tmp_path: Path) -> None:
    assert outputs.write_change_cog([], tmp_path / "c.tif", crs="EPSG:32652", gsd_m=1.0) is None
    assert not (tmp_path / "c.tif").exists()


# ---------------------------------------------------------------------- real clients
@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="gdal-bin (ogrinfo) not installed")
def test_ogrinfo_reads_without_warnings(tmp_path: Path) -> None:
    outputs.write_geojson(_merged(), tmp_path / "d.geojson")
    outputs.write_gpkg(tmp_path / "b.gpkg", _layers(), crs="EPSG:32652")
    for path in (tmp_path / "d.geojson", tmp_path / "b.gpkg"):
        proc = subprocess.run(
            ["ogrinfo", "-ro", "-al", "-so", str(path)], capture_output=True, text=True, check=True
        )
        assert "Warning" not in proc.stderr + proc.stdout, proc.stderr


@pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="gdal-bin (gdalinfo) not installed")
def test_gdalinfo_reads_cog_without_warnings(tmp_path: Path) -> None:
    out = tmp_path / "change.tif"
    outputs.write_change_cog(_write_tile_rasters(tmp_path), out, crs="EPSG:32652", gsd_m=1.0)
    proc = subprocess.run(["gdalinfo", str(out)], capture_output=True, text=True, check=True)
    assert "Warning" not in proc.stderr and "LAYOUT=COG" in proc.stdout
