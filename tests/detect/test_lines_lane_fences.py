"""New fences beside new lanes and inside their own cleared belts; lanes at sub-metre pixels.

Pins the fixes of issue 5's recall work: a new fence's own cleared belt and a patrol lane beside
it are not "edges" the fence follows, a road's edge still is, and patrol lanes come out in
full-resolution pixel coordinates when the fence evidence runs on a coarser working grid.
"""

from __future__ import annotations

import numpy as np
import shapely
from conftest import background, draw_line, draw_strip, rgb_pair, to_pixels
from scipy import ndimage

from bordewatch.detect import detect_tile
from bordewatch.detect.lines import edge_steps, follows_edge, strip_half_width
from bordewatch.imagery import TilePair
from bordewatch.results import DetectConfig


def _covered(pair, out, cls, status, target, tol_px) -> float:
    geoms = [
        to_pixels(pair, d.geometry) for d in out.detections if d.cls == cls and d.status == status
    ]
    if not geoms:
        return 0.0
    return target.intersection(shapely.union_all(geoms).buffer(tol_px)).length / target.length


def _profile_image(profile: np.ndarray, rows: int = 60) -> np.ndarray:
    """A (row, col) image whose columns follow ``profile`` (vertical structures)."""
    return np.repeat(profile[None, :].astype(np.float32), rows, axis=0)


def test_band_centred_on_line_is_no_step_when_steps_only() -> None:
    # a 5 px bright band (a new fence's cleared belt) centred on the line at column 30
    prof = np.zeros(61)
    prof[28:33] = 4.0
    z = ndimage.gaussian_filter1d(_profile_image(prof), 1.0, axis=1)
    line = shapely.LineString([(30, 5), (30, 55)])
    assert follows_edge(line, z, 1.0, 1.5)  # strict: the slid pair reaches the band's side
    assert not follows_edge(line, z, 1.0, 1.5, steps_only=True)
    # a true step (road side, field edge) stays a step either way
    step = _profile_image(np.where(np.arange(61) > 30, 3.0, 0.0))
    assert follows_edge(line, step, 1.0, 1.5, steps_only=True)
    assert follows_edge(line, step, 1.0, 1.5)


def test_explained_pixels_excuse_a_lane_beside_a_fence() -> None:
    # bright lane 4 px wide whose near edge lies 3 px from the line
    prof = np.zeros(61)
    prof[33:37] = 5.0
    z = _profile_image(prof)
    line = shapely.LineString([(30, 5), (30, 55)])
    assert follows_edge(line, z, 1.0, 1.5)
    lane = np.zeros(z.shape, bool)
    lane[:, 32:38] = True
    assert edge_steps(line, z, 1.0, explained=lane).max() == 0.0
    assert not follows_edge(line, z, 1.0, 1.5, explained=lane)


def test_strip_half_width_measures_the_lane() -> None:
    prof = np.zeros(81)
    prof[37:44] = 4.0  # 7 px wide, centre column 40
    z = ndimage.gaussian_filter1d(_profile_image(prof), 1.0, axis=1)
    hw = strip_half_width(shapely.LineString([(40, 5), (40, 55)]), z, 1.0)
    assert 2.5 <= hw <= 4.0
    narrow = np.zeros(81)
    narrow[39:42] = 4.0
    z2 = ndimage.gaussian_filter1d(_profile_image(narrow), 1.0, axis=1)
    assert strip_half_width(shapely.LineString([(40, 5), (40, 55)]), z2, 1.0) < hw


def _fence_beside_lane(seed: int) -> tuple[TilePair, shapely.LineString]:
    """A new 5 m patrol lane and a new dark wire fence 3 m beyond its edge, on textured fields."""
    g = np.random.default_rng(seed)
    shape = (320, 320)
    before = background(shape, g)
    after = before + g.normal(scale=0.01, size=before.shape).astype(np.float32)
    draw_strip(after, np.array([0.0, 100.0]), np.array([319.0, 140.0]), 5, 0.62)  # the lane
    draw_line(after, (0, 106), (319, 146), 0.15)  # the fence, 6 px from the lane's centre
    pair = rgb_pair(before, after)
    return pair, shapely.LineString([(106, 0), (146, 319)])


def test_new_fence_beside_new_lane_is_new_fence() -> None:
    # the lane's bright side 3 m away is the lane's step, not an edge the fence follows; the
    # lane's own edges (2.5 px from its centre) are not reported as fences
    covered = []
    for seed in (3, 4):
        pair, fence = _fence_beside_lane(seed)
        out = detect_tile(pair, DetectConfig())
        lane = shapely.LineString([(100, 0), (140, 319)])
        assert _covered(pair, out, "patrol_lane", "new", lane, 3.0) > 0.8
        covered.append(_covered(pair, out, "fence", "new", fence, 2.0))
        lane_side = shapely.LineString([(97.5, 0), (137.5, 319)])  # the far edge of the lane
        assert _covered(pair, out, "fence", "new", lane_side, 1.0) < 0.1
    assert min(covered) > 0.4
    assert max(covered) > 0.8


def test_lanes_at_half_metre_pixels_lie_on_the_lane() -> None:
    # at 0.5 m the fence evidence runs on a 1 m working grid; lanes must not be scaled with it
    g = np.random.default_rng(5)
    shape = (400, 400)
    before = background(shape, g)
    after = before + g.normal(scale=0.01, size=before.shape).astype(np.float32)
    draw_strip(after, np.array([0.0, 150.0]), np.array([399.0, 230.0]), 9, 0.65)  # 4.5 m lane
    pair = rgb_pair(before, after, 0.5)
    out = detect_tile(pair, DetectConfig())
    lane = shapely.LineString([(150, 0), (230, 399)])
    lanes = [to_pixels(pair, d.geometry) for d in out.detections if d.cls == "patrol_lane"]
    assert lanes
    assert _covered(pair, out, "patrol_lane", "new", lane, 6.0) > 0.7
    box = shapely.box(-1, -1, shape[1], shape[0])
    assert all(box.contains(g) for g in lanes)
