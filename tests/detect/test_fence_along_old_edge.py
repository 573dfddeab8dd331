"""A new fence built along an old vegetation edge, whose cleared belt removed that edge.

The before epoch has a step at the fence's place (forest beside a field); the after epoch shows
a thin dark line there with the same field on both sides (the forest was cut back). The step of
the before epoch is not an edge the new fence follows: the after image shows the line by itself.
A step present in both epochs still rejects a line along it.
"""

from __future__ import annotations

import numpy as np
import shapely
from conftest import background, draw_line, rgb_pair, to_pixels

from bordewatch.detect import detect_tile
from bordewatch.imagery import TilePair
from bordewatch.results import DetectConfig

SHAPE = (320, 320)
FENCE = shapely.LineString([(100, 0), (140, 319)])
"""The fence in pixel coordinates (x=col, y=row)."""


def _new_fence_cover(pair: TilePair, target: shapely.LineString, tol_px: float) -> float:
    out = detect_tile(pair, DetectConfig())
    geoms = [
        to_pixels(pair, d.geometry)
        for d in out.detections
        if d.cls == "fence" and d.status == "new"
    ]
    if not geoms:
        return 0.0
    return target.intersection(shapely.union_all(geoms).buffer(tol_px)).length / target.length


def _pair(seed: int, *, edge_after: bool, wire: bool = True, shift: int = 0) -> TilePair:
    g = np.random.default_rng(seed)
    before = background(SHAPE, g)
    after = before + g.normal(scale=0.01, size=before.shape).astype(np.float32)
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    u = cols - (100 + 40 * rows / 319)  # signed distance (columns) from the fence
    before -= np.where(u < -5, 0.12, 0.0).astype(np.float32)[None]  # forest edge beside it
    cut = -5.0 if edge_after else -11.0  # the forest cut back 6 m more (a cleared belt) or not
    after -= np.where(u < cut, 0.12, 0.0).astype(np.float32)[None]
    if wire:
        draw_line(after, (0, 100), (319, 140), 0.15)  # the new wire fence
    after = np.roll(after, shift, axis=2)  # misregistration
    return rgb_pair(before, after)


def test_new_fence_where_an_old_edge_was_cleared_is_found() -> None:
    covered = [_new_fence_cover(_pair(s, edge_after=False), FENCE, 3.0) for s in (1, 2)]
    assert min(covered) > 0.5


def test_misregistered_old_edge_is_no_new_fence() -> None:
    # the forest edge in both epochs, nothing built, the after image 1 px off: the residual
    # along the edge is no line of the after image by itself and stays rejected
    for seed in (1, 2):
        pair = _pair(seed, edge_after=True, wire=False, shift=1)
        out = detect_tile(pair, DetectConfig())
        edge = shapely.LineString([(95, 0), (135, 319)])
        near = [
            to_pixels(pair, d.geometry)
            for d in out.detections
            if d.cls == "fence" and d.status == "new"
        ]
        assert sum(g.intersection(edge.buffer(8)).length for g in near) < 20
