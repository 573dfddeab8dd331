"""A new fence along the centre of its own cleared strip is reported as a fence.

A wire fence stands in a bare strip a few metres wide; the patrol-lane detector answers on that
strip too. Lane edges answer the thin-line filter just outside the strip and are kept out of the
fence ridges, but only the edge bands are: the fence on the strip's centre line stays. (Keeping
the whole strip out cut new-fence recall on 4 tuning scenes of the demo preset from 0.65 to 0.21.)
"""

from __future__ import annotations

import numpy as np
import shapely
from conftest import background, draw_line, draw_strip, rgb_pair, to_pixels

from bordewatch.detect import detect_tile
from bordewatch.detect.classical import _drop_lane_edges, _edge_zone, _strip_mask
from bordewatch.detect.lines import LinePiece
from bordewatch.imagery import TilePair
from bordewatch.results import DetectConfig


def test_lane_keep_out_spares_the_centre_of_a_wide_strip() -> None:
    # a 10 px wide new "lane" (a fence's cleared strip) along row 50, its wire on the centre line
    centre = shapely.LineString([(0, 50), (199, 50)])
    strips = [("new", centre, 5.0)]
    mask = _strip_mask(strips, (100, 200), 1.5, 1.5)
    assert mask is not None
    assert not mask[50, 20:180].any()  # the centre row is free for the fence ridge
    assert mask[45, 20:180].all() and mask[55, 20:180].all()  # both edges are kept out
    assert not mask[58, 20:180].any()  # beyond edge + margin is free again
    wire = LinePiece("new", 0.8, shapely.LineString([(10, 50), (190, 50)]))
    edge = LinePiece("new", 0.8, shapely.LineString([(10, 45.5), (190, 45.5)]))
    kept = _drop_lane_edges([("fence", wire), ("fence", edge)], strips, 1.0, 30.0)
    assert [p.line.equals(wire.line) for _, p in kept] == [True]


def test_narrow_strip_is_all_edge() -> None:
    # a 3 px strip has no centre away from its edges: a ridge on it is the strip's own answer
    centre = shapely.LineString([(0, 50), (199, 50)])
    mask = _strip_mask([("new", centre, 1.5)], (100, 200), 1.5, 1.5)
    assert mask is not None and mask[50, 20:180].all()


def test_edge_zone_keeps_the_centre_of_wide_strips_only() -> None:
    line = shapely.LineString([(0, 0), (100, 0)])
    ring = _edge_zone([(line, 5.0)], 1.5, 1.5)
    assert not ring.contains(shapely.Point(50, 0))  # the centre line is free
    assert ring.contains(shapely.Point(50, 5.0)) and ring.contains(shapely.Point(50, -6.0))
    assert not ring.contains(shapely.Point(50, 7.0))
    # a strip narrower than the edge bands has no free centre
    assert _edge_zone([(line, 1.2)], 1.5, 1.5).contains(shapely.Point(50, 0))
    assert _edge_zone([(line, 5.0)], 1.5, None).contains(shapely.Point(50, 0))


def _fence_in_cleared_strip(seed: int) -> tuple[TilePair, shapely.LineString]:
    """A new wire fence on the centre line of a 2.5 m soil strip in a 9 m cleared belt."""
    g = np.random.default_rng(seed)
    shape = (320, 320)
    before = background(shape, g)
    after = before + g.normal(scale=0.01, size=before.shape).astype(np.float32)
    ends = np.array([0.0, 90.0]), np.array([319.0, 150.0])
    draw_strip(after, *ends, 9, 0.45)  # the cleared belt
    draw_strip(after, *ends, 3, 0.5)  # the soil strip
    draw_line(after, (0, 90), (319, 150), 0.2)  # the wire
    pair = rgb_pair(before, after)
    return pair, shapely.LineString([(90, 0), (150, 319)])


def test_fence_splitting_its_strip_into_two_lanes_is_found() -> None:
    # the dark wire splits the bright strip's lane response into two lanes ~3 m either side;
    # their edge bands must not cover the wire between them
    for seed in (7, 8):
        pair, fence = _fence_in_cleared_strip(seed)
        out = detect_tile(pair, DetectConfig())
        new = [
            to_pixels(pair, d.geometry)
            for d in out.detections
            if d.cls == "fence" and d.status == "new"
        ]
        assert new, seed
        covered = fence.intersection(shapely.union_all(new).buffer(2.0)).length / fence.length
        assert covered > 0.7, (seed, covered)
