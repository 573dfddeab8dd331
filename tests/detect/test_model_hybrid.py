"""The hybrid per class: the network vets and adds fences and towers; lanes stay classical."""

from __future__ import annotations

import numpy as np
import shapely
from affine import Affine

from bordewatch.detect import hybrid
from bordewatch.detect import model as m
from bordewatch.imagery import TilePair
from bordewatch.results import DetectConfig, Detection, DetectorOutput
from bordewatch.tiling import Tile


def _pair(shape: tuple[int, int] = (200, 200), gsd_m: float = 1.0) -> TilePair:
    rows, cols = shape
    aff = Affine.translation(500_000.0, 4_600_000.0) @ Affine.scale(gsd_m, -gsd_m)
    corners = [aff @ (0, 0), aff @ (cols, 0), aff @ (cols, rows), aff @ (0, rows)]
    tile = Tile(
        "t", 0, 0.0, 1.0, "EPSG:32652", tuple(aff)[:6], cols, rows, gsd_m, shapely.Polygon(corners)
    )
    img = np.full((3, rows, cols), 0.3, np.float32)
    return TilePair(tile, img, img.copy(), np.ones(shape, bool), ("red", "green", "blue"))


def test_classical_detections_stay_and_only_confident_network_fences_are_added(
    monkeypatch,
) -> None:
    pair = _pair()
    x0, y0 = 500_000.0, 4_600_000.0
    lane = Detection(
        "patrol_lane", "new", 0.6, shapely.LineString([(x0 + 20, y0 - 50), (x0 + 180, y0 - 50)])
    )
    fence = Detection(
        "fence", "new", 0.7, shapely.LineString([(x0 + 20, y0 - 120), (x0 + 180, y0 - 120)])
    )
    tower = Detection("watchtower", "new", 0.8, shapely.Point(x0 + 100, y0 - 160))
    old = Detection(
        "fence", "existing", 0.9, shapely.LineString([(x0 + 20, y0 - 10), (x0 + 180, y0 - 10)])
    )
    change = np.zeros(pair.valid.shape, np.float32)
    classical = DetectorOutput(detections=(lane, fence, tower, old), change=change)
    silent = np.zeros((len(m.CLASSES), *pair.valid.shape), np.float32)
    silent[0] = 1.0
    monkeypatch.setattr(hybrid, "detect_classical", lambda p, c: classical)
    monkeypatch.setattr(hybrid, "load_model", lambda *a, **k: None)
    monkeypatch.setattr(hybrid, "predict_tile", lambda p, net: silent)
    # a silent network vetoes nothing: every classical detection stays, scores untouched
    out = hybrid.detect_hybrid(pair, DetectConfig(method="hybrid"))
    assert out.detections == classical.detections
    # a confident network fence, lane and tower away from the classical ones: only the fence
    # is added (network lanes and towers are not used)
    confident = silent.copy()
    confident[0, 80, 10:190] = confident[0, 140, 10:190] = 0.02
    confident[1, 140, 10:190] = 0.98  # fence 20 m from the classical one
    confident[2, 80, 10:190] = 0.98  # lane
    confident[0, 186:191, 40:45] = 0.02
    confident[3, 186:191, 40:45] = 0.98  # tower
    monkeypatch.setattr(hybrid, "predict_tile", lambda p, net: confident)
    out = hybrid.detect_hybrid(pair, DetectConfig(method="hybrid"))
    added = [d for d in out.detections if d not in classical.detections]
    assert out.detections[: len(classical.detections)] == classical.detections
    assert [(d.cls, d.status) for d in added] == [("fence", "new")]
    assert abs(added[0].geometry.centroid.y - (y0 - 140.5)) < 2.0
    assert added[0].score >= hybrid.ADD_CONFIDENCE["fence"]
    # ...but not where it duplicates a classical fence
    on_top = silent.copy()
    on_top[0, 120, 10:190] = 0.02
    on_top[1, 120, 10:190] = 0.98
    monkeypatch.setattr(hybrid, "predict_tile", lambda p, net: on_top)
    out = hybrid.detect_hybrid(pair, DetectConfig(method="hybrid"))
    assert out.detections == classical.detections


def test_network_confirms_classical_tower_candidates_only(monkeypatch) -> None:
    """A classical new-tower candidate is added where the network's tower probability near it
    reaches the bar; not where it is low, and not beside a tower the classical path reported."""
    from bordewatch.detect.posts import Tower

    pair = _pair()
    x0, y0 = 500_000.0, 4_600_000.0
    cands = [Tower(60.0, 60.0, 0.8, 0.5, 52.0, 60.0), Tower(140.0, 140.0, 0.8, 0.5, 132.0, 140.0)]
    monkeypatch.setattr(hybrid, "new_tower_candidates", lambda *a, **k: cands)
    proba = np.zeros((len(m.CLASSES), *pair.valid.shape), np.float32)
    proba[0] = 1.0
    proba[3, 58:61, 61:64] = 0.9  # within 3 m of the first candidate only
    kept = [Detection("fence", "new", 0.7, shapely.LineString([(x0, y0 - 10), (x0 + 90, y0 - 10)]))]
    got = hybrid.confirmed_towers(pair, DetectConfig(method="hybrid"), proba, kept)
    assert len(got) == 1 and got[0].cls == "watchtower" and got[0].status == "new"
    assert got[0].geometry.distance(shapely.Point(x0 + 60.5, y0 - 60.5)) < 1e-6
    assert got[0].score == 0.9
    # the classical path already has a tower there: nothing added twice
    there = Detection("watchtower", "new", 0.8, shapely.Point(x0 + 62, y0 - 62))
    assert hybrid.confirmed_towers(pair, DetectConfig(method="hybrid"), proba, [there]) == []
    proba[3] = 0.2  # a network that does not see towers confirms none
    assert hybrid.confirmed_towers(pair, DetectConfig(method="hybrid"), proba, kept) == []


def test_new_tower_candidates_find_a_new_tower_and_nothing_unchanged() -> None:
    """The candidates (before the classical path's later tests) include a plain new tower at its
    roof, on the full grid at 0.5 m too; an unchanged pair gives none."""
    from bordewatch.detect.classical import TOWER_PARAMS
    from bordewatch.detect.posts import new_tower_candidates, north_pixel_dir

    for gsd in (1.0, 0.5):
        n = round(200 / gsd)
        pair = _pair((n, n), gsd)
        rng = np.random.default_rng(3)
        before = (pair.before * (1 + rng.normal(scale=0.03, size=pair.before.shape))).astype(
            np.float32
        )
        after = before.copy()
        r, c, k = round(100 / gsd), round(100 / gsd), round(2 / gsd)
        after[:, r - k - round(10 / gsd) : r - k, c - k : c + k] *= 0.3  # shadow to the north
        after[:, r - k : r + k, c - k : c + k] = 0.8  # roof
        north = north_pixel_dir(pair.tile.affine)
        kw = {"north": north, "shadow_dir": (-1.0, 0.0)}
        got = new_tower_candidates(before, after, pair.valid, pair.bands, gsd, TOWER_PARAMS, **kw)
        assert any(abs(t.row - r) * gsd <= 3 and abs(t.col - c) * gsd <= 3 for t in got), gsd
        assert (
            new_tower_candidates(before, before, pair.valid, pair.bands, gsd, TOWER_PARAMS, **kw)
            == []
        )
