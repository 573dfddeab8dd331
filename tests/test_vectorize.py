"""Per-tile vectorisation: skeleton tracing, gap bridging, polylines, blobs, CRS mapping."""

from __future__ import annotations

import numpy as np
import shapely
from affine import Affine
from shapely.geometry import LineString, Point
from skimage.draw import disk, line

from bordewatch.vectorize import (
    blob_centroids,
    bridge_gaps,
    mask_to_polylines,
    merge_lines,
    sample_along,
    sample_along_all,
    split_by_flags,
    to_tile_crs,
    trace_skeleton,
)


def test_trace_straight_line() -> None:
    m = np.zeros((20, 40), bool)
    m[5, 3:30] = True
    paths = trace_skeleton(m)
    assert len(paths) == 1
    p = paths[0]
    assert {tuple(p[0]), tuple(p[-1])} == {(3.0, 5.0), (29.0, 5.0)}
    assert len(p) == 27


def test_trace_cross_gives_four_branches_and_loop_once() -> None:
    m = np.zeros((50, 50), bool)
    m[25, 5:45] = True
    m[5:45, 25] = True
    assert len(trace_skeleton(m)) == 4
    ring = np.zeros((30, 30), bool)
    rr, cc = disk((15, 15), 10)
    ring[rr, cc] = True
    rr, cc = disk((15, 15), 9)
    ring[rr, cc] = False
    from skimage.morphology import skeletonize

    paths = trace_skeleton(skeletonize(ring))
    assert len(paths) == 1 and np.allclose(paths[0][0], paths[0][-1])


def test_bridge_joins_aligned_and_not_perpendicular() -> None:
    a = LineString([(0, 0), (20, 0)])
    b = LineString([(26, 0), (50, 0)])
    c = LineString([(23, 3), (23, 40)])  # perpendicular, close to the gap
    out = bridge_gaps([a, b, c], max_gap_px=8)
    lengths = sorted(round(x.length) for x in out)
    assert lengths == [37, 50]


def test_bridge_respects_gap_limit() -> None:
    a = LineString([(0, 0), (20, 0)])
    b = LineString([(35, 0), (50, 0)])
    assert len(bridge_gaps([a, b], max_gap_px=8)) == 2


def test_mask_to_polylines_parallel_lines_stay_separate() -> None:
    m = np.zeros((80, 200), bool)
    for r0 in (20, 30):  # 10 px apart
        rr, cc = line(r0, 5, r0 + 15, 190)
        m[rr, cc] = True
    m[60, 10:18] = True  # short: dropped
    lines = mask_to_polylines(m, min_length_px=30, max_gap_px=6)
    assert len(lines) == 2
    assert all(ln.length > 180 for ln in lines)
    assert lines[0].distance(lines[1]) > 8
    assert all(len(ln.coords) <= 4 for ln in lines)  # simplified


def test_mask_to_polylines_bridges_dashes() -> None:
    m = np.zeros((20, 200), bool)
    for c0 in range(5, 190, 30):
        m[10, c0 : c0 + 25] = True  # 5 px gaps
    lines = mask_to_polylines(m, min_length_px=100, max_gap_px=8)
    assert len(lines) == 1 and lines[0].length > 170


def test_blob_centroids() -> None:
    m = np.zeros((60, 60), bool)
    m[10:14, 10:14] = True
    m[40:46, 30:36] = True
    cs = sorted((p.x, p.y) for p in blob_centroids(m))
    assert cs == [(11.5, 11.5), (32.5, 42.5)]


def test_to_tile_crs_rotated_grid() -> None:
    aff = Affine.translation(1000.0, 2000.0) @ Affine.rotation(90.0) @ Affine.scale(0.5, -0.5)
    g = to_tile_crs(Point(0, 0), aff)
    x, y = aff @ (0.5, 0.5)
    assert np.allclose([g.x, g.y], [x, y])
    ln = to_tile_crs(LineString([(0, 0), (10, 0)]), aff)
    assert np.isclose(ln.length, 5.0)


def test_sample_and_split() -> None:
    img = np.zeros((10, 30), np.float32)
    img[5, 15:] = 1.0
    ln = LineString([(0, 5), (29, 5)])
    d, v = sample_along(ln, img)
    pieces = split_by_flags(ln, d, (v > 0.5).astype(int))
    assert [f for f, _ in pieces] == [0, 1]
    assert np.isclose(sum(p.length for _, p in pieces), ln.length)
    assert abs(pieces[0][1].length - 14.5) < 1.0
    _, vr = sample_along(LineString([(0, 4), (29, 4)]), img, radius=1)
    assert vr.max() == 1.0


def test_sample_along_all_is_sample_along_per_image() -> None:
    """One interpolation for several maps: each gets its own radius, clipped at the edges."""
    rng = np.random.default_rng(3)
    maps = (rng.random((40, 50), dtype=np.float32), rng.random((40, 50)), rng.random((40, 50)))
    ln = LineString([(-2.0, 3.3), (20.4, 17.9), (49.0, 39.6)])  # leaves the image at both ends
    radii = (0, 1, 3)
    d, got = sample_along_all(ln, maps, radii, step_px=0.7)
    for img, r, vals in zip(maps, radii, got, strict=True):
        d_one, want = sample_along(ln, img, radius=r, step_px=0.7)
        np.testing.assert_array_equal(d, d_one)
        assert vals.dtype == np.float64
        np.testing.assert_array_equal(vals, want)
    # a 7 x 7 window takes the larger values: the radii are not mixed up
    assert (got[2] >= sample_along(ln, maps[2], step_px=0.7)[1]).all()
    assert (got[2] > got[0]).any()


def test_merge_lines() -> None:
    a, b = LineString([(0, 0), (1, 0)]), LineString([(5, 0), (6, 0)])
    assert merge_lines([a]).equals(a)
    assert shapely.get_num_geometries(merge_lines([a, b])) == 2
