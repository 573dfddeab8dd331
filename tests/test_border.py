"""Border loading, validation and geodesic chainage."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from bordewatch.border import Border, default_border, hrw_areas, load_border, parse_km_range
from bordewatch.errors import BorderError

GEOD = Geod(ellps="WGS84")
BORDER = default_border()


def _write(path: Path, geometries: list[dict], props: list[dict] | None = None) -> Path:
    props = props or [{} for _ in geometries]
    features = [
        {"type": "Feature", "properties": p, "geometry": g} for g, p in zip(geometries, props)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


# ---------------------------------------------------------------- the default line
def test_default_border_length_and_orientation() -> None:
    assert BORDER.name == "PRK-CHN"
    assert BORDER.length_km == pytest.approx(1004.9, abs=0.5)
    start, end = BORDER.coords[0], BORDER.coords[-1]
    assert start[0] < 124.5 and end[0] > 130.0, "runs west (Yalu mouth) to east (Tumen)"
    assert (BORDER.left, BORDER.right) == ("CHN", "PRK")


def test_default_border_matches_reference_copy(shared_data: Path) -> None:
    ref = gpd.read_file(shared_data / "border" / "prk_chn_border_ne10m.geojson")
    ref_line = ref.loc[ref["border_id"] == "PRK-CHN"].geometry.iloc[0]
    assert shapely.hausdorff_distance(BORDER.line, ref_line) < 1e-6
    assert GEOD.geometry_length(ref_line) / 1000 == pytest.approx(BORDER.length_km, abs=0.5)


def test_china_is_left_north_korea_right() -> None:
    sinuiju_lon, sinuiju_lat = 124.40, 40.10  # North Korean city on the Yalu's south-east bank
    dandong_lon, dandong_lat = 124.39, 40.13  # Chinese city on the north-west bank
    _, _, side = BORDER.locate([sinuiju_lon, dandong_lon], [sinuiju_lat, dandong_lat])
    assert side.tolist() == ["right", "left"]


def test_prk_rus_line_is_available() -> None:
    rus = default_border("PRK-RUS")
    assert rus.length_km == pytest.approx(31.5, abs=0.5)


def test_hrw_areas_are_six_ranges_on_the_line() -> None:
    areas = hrw_areas()
    assert list(areas["area"]) == [
        "Sinuiju", "Chunggang", "Hyesan", "Taehongdan", "Hoeryong", "Sonbong",
    ]  # fmt: skip
    lengths = areas["km_end"] - areas["km_start"]
    assert lengths.sum() == pytest.approx(321.0, abs=1.0)
    assert (areas["km_start"] >= 0).all() and (areas["km_end"] <= BORDER.length_km + 0.1).all()


# ---------------------------------------------------------------- chainage properties
@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0.0, max_value=1004.0))
def test_km_of_point_at_round_trips_within_1m(km: float) -> None:
    lon, lat = BORDER.point_at([km])
    assert abs(BORDER.km_of(lon, lat)[0] - km) * 1000 < 1.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1004.9), min_size=2, max_size=30))
def test_chainage_is_monotone_along_the_line(kms: list[float]) -> None:
    kms_sorted = np.sort(np.asarray(kms))
    lon, lat = BORDER.point_at(kms_sorted)
    back = BORDER.km_of(lon, lat)
    assert np.all(np.diff(back) >= -1e-3)


def _zigzag(seed: int) -> Border:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 8))
    lon = 125.0 + np.cumsum(rng.uniform(0.02, 0.08, n))
    lat = 41.0 + np.cumsum(rng.uniform(-0.03, 0.03, n))
    return Border(shapely.LineString(np.column_stack([lon, lat])), name="zig")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    frac=st.floats(0.2, 0.8),
    offset=st.floats(-400.0, 400.0).filter(lambda d: abs(d) > 1.0),
)
def test_locate_recovers_perpendicular_offsets(seed: int, frac: float, offset: float) -> None:
    border = _zigzag(seed)
    # a point in the middle of a segment, pushed perpendicular to it: nearest point is its foot
    seg = int(seed % (len(border.coords) - 1))
    km = border.vertex_km[seg] + frac * (border.vertex_km[seg + 1] - border.vertex_km[seg])
    lon, lat = border.point_at([km])
    a, b = border.coords[seg], border.coords[seg + 1]
    az = GEOD.inv(a[0], a[1], b[0], b[1])[0]
    seg_len = GEOD.inv(a[0], a[1], b[0], b[1])[2]
    # skip points whose perpendicular would land nearer another segment (convex corners)
    if min(frac, 1 - frac) * seg_len < abs(offset) * 1.5:
        return
    plon, plat, _ = GEOD.fwd(lon, lat, az - 90.0, [abs(offset)])
    if offset < 0:
        plon, plat, _ = GEOD.fwd(lon, lat, az + 90.0, [abs(offset)])
    got_km, got_off, side = border.locate(plon, plat)
    assert abs(abs(got_off[0]) - abs(offset)) <= 0.01 * abs(offset) + 0.05
    assert side[0] == ("left" if offset > 0 else "right")
    assert np.sign(got_off[0]) == np.sign(offset)
    assert abs(got_km[0] - km) * 1000 < 0.01 * abs(offset) + 1.0


@settings(max_examples=30, deadline=None)
@given(step=st.floats(0.3, 25.0), start=st.floats(0, 900), length=st.floats(1.0, 100.0))
def test_segments_are_contiguous_and_sum_to_the_range(
    step: float, start: float, length: float
) -> None:
    end = min(start + length, BORDER.length_km)
    seg = BORDER.segments(step, (start, end))
    assert seg["km_start"].iloc[0] == pytest.approx(start)
    assert seg["km_end"].iloc[-1] == pytest.approx(end)
    assert np.allclose(seg["km_start"].to_numpy()[1:], seg["km_end"].to_numpy()[:-1])
    geodesic_km = sum(GEOD.geometry_length(g) for g in seg.geometry) / 1000
    assert geodesic_km == pytest.approx(end - start, rel=1e-3, abs=1e-3)


def test_whole_line_segments_sum_to_length() -> None:
    seg = BORDER.segments(1.0)
    assert len(seg) == 1005
    assert (seg["km_end"] - seg["km_start"]).sum() == pytest.approx(BORDER.length_km)


def test_utm_crs_changes_along_the_line() -> None:
    assert BORDER.utm_crs(0, 10).to_epsg() == 32651
    assert BORDER.utm_crs(990, 1000).to_epsg() == 32652


# ---------------------------------------------------------------- loading other files
def test_loads_a_line_in_another_crs_and_format(tmp_path: Path) -> None:
    line = BORDER.substring(100, 130)
    frame = gpd.GeoDataFrame({"name": ["stretch"]}, geometry=[line], crs="EPSG:4326")
    path = tmp_path / "line.gpkg"
    frame.to_crs(BORDER.utm_crs(100, 130)).to_file(path)
    loaded = load_border(path)
    assert loaded.name == "stretch"
    assert loaded.length_km == pytest.approx(30.0, abs=0.05)


def test_multipart_line_is_merged_in_order(tmp_path: Path) -> None:
    c = shapely.get_coordinates(BORDER.substring(200, 210))
    mid = len(c) // 2
    parts = [c[mid:].tolist(), c[: mid + 1].tolist()]  # out of order, sharing a vertex
    path = _write(tmp_path / "m.geojson", [{"type": "MultiLineString", "coordinates": parts}])
    assert load_border(path).length_km == pytest.approx(10.0, abs=0.01)


@pytest.mark.parametrize(
    ("geometries", "props", "message"),
    [
        ([], None, "no features"),
        ([{"type": "Point", "coordinates": [125, 40]}], None, "points, not a line"),
        (
            [{"type": "Polygon", "coordinates": [[[125, 40], [126, 40], [126, 41], [125, 40]]]}],
            None,
            "polygons, not a line",
        ),
        ([{"type": "LineString", "coordinates": [[40, 125], [41, 126]]}], None, "swapped lat/lon"),
        (
            [
                {"type": "LineString", "coordinates": [[125, 40], [125.1, 40]]},
                {"type": "LineString", "coordinates": [[126, 40], [126.1, 40]]},
            ],
            [{"name": "a"}, {"name": "b"}],
            "--border-id",
        ),
        (
            [
                {
                    "type": "MultiLineString",
                    "coordinates": [[[125, 40], [125.1, 40]], [[126, 40], [126.1, 40]]],
                }
            ],
            None,
            "gap of",
        ),
    ],
)
def test_bad_border_files_are_rejected_clearly(
    tmp_path: Path, geometries: list[dict], props: list[dict] | None, message: str
) -> None:
    path = _write(tmp_path / "bad.geojson", geometries, props)
    with pytest.raises(BorderError, match=message) as info:
        load_border(path)
    assert str(path) in str(info.value)


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(BorderError, match="not found"):
        load_border(tmp_path / "nope.geojson")
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json")
    with pytest.raises(BorderError, match="cannot read"):
        load_border(bad)


def test_border_id_selects_a_feature(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "two.geojson",
        [
            {"type": "LineString", "coordinates": [[125, 40], [125.1, 40]]},
            {"type": "LineString", "coordinates": [[126, 40], [126.2, 40]]},
        ],
        [{"name": "a"}, {"name": "b"}],
    )
    assert load_border(path, border_id="b").length_km == pytest.approx(17.07, abs=0.1)
    with pytest.raises(BorderError, match="available: a, b"):
        load_border(path, border_id="c")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, (0.0, BORDER.length_km)),
        ("10:20", (10.0, 20.0)),
        (":5", (0.0, 5.0)),
        ("1000:", (1000.0, BORDER.length_km)),
    ],
)
def test_parse_km_range(text: str | None, expected: tuple[float, float]) -> None:
    assert parse_km_range(text, BORDER) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [("20:10", "reversed"), ("2000:2100", "outside"), ("a:b", "START:END"), ("5", "START:END")],
)
def test_parse_km_range_rejects(text: str, message: str) -> None:
    with pytest.raises(BorderError, match=message):
        parse_km_range(text, BORDER)
