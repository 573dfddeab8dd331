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


def test_network_silence_vetoes_fences_and_towers_but_keeps_classical_lanes(monkeypatch) -> None:
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
    out = hybrid.detect_hybrid(pair, DetectConfig(method="hybrid"))
    kept = {(d.cls, d.status) for d in out.detections}
    assert kept == {("patrol_lane", "new"), ("fence", "existing")}
    assert [d.score for d in out.detections if d.cls == "patrol_lane"] == [0.6]  # score untouched
    # with network support the fence and the tower stay too
    support = silent.copy()
    support[1, 118:123, 20:181] = 0.5
    support[3, 158:163, 98:103] = 0.5
    monkeypatch.setattr(hybrid, "predict_tile", lambda p, net: support)
    out = hybrid.detect_hybrid(pair, DetectConfig(method="hybrid"))
    assert {d.cls for d in out.detections if d.status == "new"} == {
        "patrol_lane",
        "fence",
        "watchtower",
    }
    assert hybrid.KEEP_SUPPORT["patrol_lane"] == 0.0 < hybrid.KEEP_SUPPORT["fence"]
    # ...and a confident network lane is not added (lanes are the classical ones)
    lanes = silent.copy()
    lanes[0, 80, 10:190] = 0.02
    lanes[2, 80, 10:190] = 0.98
    monkeypatch.setattr(hybrid, "predict_tile", lambda p, net: lanes)
    out = hybrid.detect_hybrid(pair, DetectConfig(method="hybrid"))
    assert [d.geometry for d in out.detections if d.cls == "patrol_lane"] == [lane.geometry]
