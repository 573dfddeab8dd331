"""Classical detector on planted scenes: class, status, validity, CRS, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from conftest import make_tile, scene

from bordewatch.detect import METHODS, detect_tile, register_method
from bordewatch.errors import UnknownMethodError
from bordewatch.imagery import TilePair
from bordewatch.results import DetectConfig, DetectorOutput


def _to_px(pair: TilePair, geom: shapely.Geometry) -> shapely.Geometry:
    inv = ~pair.tile.affine
    return shapely.transform(geom, lambda xy: np.column_stack(inv @ (xy[:, 0], xy[:, 1])) - 0.5)


def _near(pair, out, cls, status, target, tol_px=5.0):
    geoms = [
        _to_px(pair, d.geometry) for d in out.detections if d.cls == cls and d.status == status
    ]
    if not geoms:
        return 0.0
    union = shapely.union_all(geoms)
    if isinstance(target, shapely.Point):
        return float(union.distance(target) <= tol_px)
    return target.intersection(union.buffer(tol_px)).length / target.length


@pytest.fixture(scope="module")
def result(planted) -> tuple[TilePair, dict, DetectorOutput]:
    pair, truth = planted
    return pair, truth, detect_tile(pair, DetectConfig())


def test_new_fences_found_separately(result) -> None:
    pair, truth, out = result
    for line in truth["new_fences"]:  # 40 px apart, parallel: two lines, each covered
        assert _near(pair, out, "fence", "new", line, 3.0) > 0.9
    new = [d for d in out.detections if d.cls == "fence" and d.status == "new"]
    assert len(new) >= 2


def test_existing_fence_is_existing_not_new(result) -> None:
    pair, truth, out = result
    assert _near(pair, out, "fence", "existing", truth["existing_fence"]) > 0.9
    assert _near(pair, out, "fence", "new", truth["existing_fence"]) == 0.0


def test_new_lane_found(result) -> None:
    pair, truth, out = result
    assert _near(pair, out, "patrol_lane", "new", truth["new_lane"]) > 0.8
    # the lane is not mistaken for a fence
    assert _near(pair, out, "fence", "new", truth["new_lane"], 2.0) < 0.1


def test_road_never_new(result) -> None:
    pair, truth, out = result
    for cls in ("fence", "patrol_lane"):
        assert _near(pair, out, cls, "new", truth["road"], 4.0) < 0.15


def test_new_towers_found_and_not_merged(result) -> None:
    pair, truth, out = result
    towers = [_to_px(pair, d.geometry) for d in out.detections if d.cls == "watchtower"]
    new = [_to_px(pair, d.geometry) for d in out.detections if d.status == "new"]
    for p in truth["new_towers"]:  # 50 px apart: each one its own detection
        assert min(p.distance(t) for t in new) <= 3.0
    assert all(t.distance(truth["existing_tower"]) > 3 for t in new)
    assert not [d for d in out.detections if d.cls == "watchtower" and d.status == "existing"]
    assert towers  # the new ones


def test_existing_tower_found_with_the_inventory_on(planted, monkeypatch) -> None:
    from dataclasses import replace

    from bordewatch.detect import classical

    monkeypatch.setattr(classical, "TOWER_PARAMS", replace(classical.TOWER_PARAMS, inventory=True))
    pair, truth = planted
    out = detect_tile(pair, DetectConfig())
    existing = [
        _to_px(pair, d.geometry)
        for d in out.detections
        if d.cls == "watchtower" and d.status == "existing"
    ]
    assert min(truth["existing_tower"].distance(t) for t in existing) <= 3.0


def test_geometries_valid_in_tile_crs(result) -> None:
    pair, _, out = result
    core = pair.tile.core
    assert out.detections
    for d in out.detections:
        assert d.geometry.is_valid and not d.geometry.is_empty
        assert core.buffer(1.0).contains(d.geometry)
        assert 0.0 <= d.score <= 1.0
        kind = "Point" if d.cls == "watchtower" else "LineString"
        assert d.geometry.geom_type in (kind, "Multi" + kind)
    assert out.change.dtype == np.float32 and out.change.shape == pair.valid.shape
    assert np.nanmin(out.change) >= 0 and np.nanmax(out.change) <= 1


def test_rotated_grid_maps_to_crs() -> None:
    before, after, truth = scene(0)
    tile = make_tile(before.shape[1:], 1.0, rotation_deg=30.0)
    pair = TilePair(tile, before, after, np.ones(before.shape[1:], bool), ("r", "g", "b"))
    out = detect_tile(pair, DetectConfig())
    fences = [d for d in out.detections if d.cls == "fence" and d.status == "new"]
    assert fences
    for d in fences:
        assert tile.core.buffer(1.0).contains(d.geometry)
    assert _near(pair, out, "fence", "new", truth["new_fences"][0], 3.0) > 0.8


def test_gain_offset_change_gives_nothing_new() -> None:
    before, _, _ = scene(3)
    after = np.clip(before * 0.7 + 0.1, 0, 1).astype(np.float32)
    pair = TilePair(
        make_tile(before.shape[1:]),
        before,
        after,
        np.ones(before.shape[1:], bool),
        ("red", "green", "blue"),
    )
    out = detect_tile(pair, DetectConfig())
    assert [d for d in out.detections if d.status != "existing"] == []
    assert float(np.nanmax(out.change)) < 0.2


def test_invalid_pixels_give_nan_change_and_no_detections_there() -> None:
    before, after, _ = scene(1)
    valid = np.ones(before.shape[1:], bool)
    valid[:, 200:] = False
    pair = TilePair(make_tile(before.shape[1:]), before, after, valid, ("red", "green", "blue"))
    out = detect_tile(pair, DetectConfig())
    assert np.isnan(out.change[:, 200:]).all() and not np.isnan(out.change[:, :200]).any()
    inv = ~pair.tile.affine
    for d in out.detections:
        cols = np.array([inv @ tuple(xy) for xy in shapely.get_coordinates(d.geometry)])[:, 0]
        assert cols.max() < 201


def test_coarse_gsd_reports_no_fences() -> None:
    before, after, _ = scene(0)
    pair = TilePair(
        make_tile(before.shape[1:], 10.0),
        before,
        after,
        np.ones(before.shape[1:], bool),
        ("r", "g", "b"),
    )
    out = detect_tile(pair, DetectConfig())
    assert not [d for d in out.detections if d.cls in ("fence", "watchtower")]


def test_deterministic(planted) -> None:
    pair, _ = planted
    a = detect_tile(pair, DetectConfig())
    b = detect_tile(pair, DetectConfig())
    assert [(d.cls, d.status, d.score, d.geometry.wkb) for d in a.detections] == [
        (d.cls, d.status, d.score, d.geometry.wkb) for d in b.detections
    ]
    assert np.array_equal(a.change, b.change, equal_nan=True)


def test_unknown_method_lists_names(planted) -> None:
    pair, _ = planted
    with pytest.raises(UnknownMethodError, match="classical"):
        detect_tile(pair, DetectConfig(method="nope"))  # type: ignore[arg-type]


def test_register_method(planted) -> None:
    pair, _ = planted
    sentinel = DetectorOutput(detections=(), change=np.zeros(pair.valid.shape, np.float32))
    register_method("test-only", lambda p, c: sentinel)
    try:
        assert detect_tile(pair, DetectConfig(method="test-only")) is sentinel  # type: ignore[arg-type]
    finally:
        METHODS.pop("test-only")


def test_given_sun_azimuth_is_reported(planted) -> None:
    pair, _ = planted
    out = detect_tile(pair, DetectConfig(sun_azimuth_deg=315.0))
    assert out.sun_azimuth_deg == (315.0, 315.0)


def test_edge_is_not_a_fence_but_a_thin_line_is() -> None:
    from bordewatch.detect.lines import follows_edge, smoothed_units

    g = np.random.default_rng(3)
    img = 0.4 + g.normal(scale=0.02, size=(120, 120)).astype(np.float32)
    img[:, 60:72] += 0.4  # a road: its side (a step) along column 60
    img[:, 20] -= 0.2  # a thin dark fence along column 20
    z = smoothed_units(img.astype(np.float32), np.ones(img.shape, bool), 1.0)
    edge = shapely.LineString([(60.5, 5), (60.5, 115)])
    edge_off = shapely.LineString([(59, 5), (59, 115)])  # 1.5 px misregistered
    fence = shapely.LineString([(20, 5), (20, 115)])
    assert follows_edge(edge, z, 1.0, 1.5)
    assert follows_edge(edge_off, z, 1.0, 1.5)
    assert not follows_edge(fence, z, 1.0, 1.5)
