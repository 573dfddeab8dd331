"""Property-based fuzzing of the vectoriser: random masks never crash it and give valid geometry."""

from __future__ import annotations

import numpy as np
import shapely
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bordewatch.vectorize import blob_centroids, mask_to_polylines, to_tile_crs

MASKS = st.one_of(
    arrays(np.bool_, st.tuples(st.integers(1, 40), st.integers(1, 40))),  # noise, any shape
    st.builds(  # random thick and thin strokes, the shapes detectors produce
        lambda seed, n, w: _strokes(seed, n, w),
        st.integers(0, 10_000),
        st.integers(0, 6),
        st.integers(1, 4),
    ),
)


def _strokes(seed: int, n: int, width: int) -> np.ndarray:
    from skimage.draw import line

    gen = np.random.default_rng(seed)
    mask = np.zeros((64, 64), bool)
    for _ in range(n):
        r0, c0, r1, c1 = gen.integers(0, 64, 4)
        rr, cc = line(r0, c0, r1, c1)
        for d in range(width):
            mask[np.clip(rr + d, 0, 63), cc] = True
    return mask


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mask=MASKS, min_length=st.floats(0.0, 30.0), gap=st.floats(0.0, 6.0))
def test_random_masks_give_valid_lines(mask: np.ndarray, min_length: float, gap: float) -> None:
    lines = mask_to_polylines(mask, min_length_px=min_length, max_gap_px=gap)
    affine = (
        Affine.translation(500_000, 4_700_000) @ Affine.rotation(17.0) @ Affine.scale(0.5, -0.5)
    )
    for ln in lines:
        assert ln.geom_type == "LineString" and shapely.is_valid(ln) and not ln.is_empty
        assert ln.length >= min_length - 1e-6
        x, y = shapely.get_coordinates(ln).T
        assert (x >= -1).all() and (x <= mask.shape[1]).all()  # stays on the grid (x = col)
        assert (y >= -1).all() and (y <= mask.shape[0]).all()
        tile = to_tile_crs(ln, affine)
        assert shapely.is_valid(tile) and abs(tile.length - 0.5 * ln.length) < 1e-6 * (
            1 + ln.length
        )


@settings(max_examples=80, deadline=None)
@given(mask=MASKS)
def test_random_masks_give_one_centroid_per_blob(mask: np.ndarray) -> None:
    from scipy import ndimage

    points = blob_centroids(mask)
    assert len(points) == ndimage.label(mask, structure=np.ones((3, 3)))[1]
    for p in points:
        assert shapely.is_valid(p) and 0 <= p.x < mask.shape[1] and 0 <= p.y < mask.shape[0]


# ---------------------------------------------------------------------- equivalence (issue 7)
# The vectoriser was rewritten for speed; it must give exactly what the frozen reference copy
# (tests/_vectorize_reference.py, the implementation before the rewrite) gives.
def _reference():  # type: ignore[no-untyped-def]
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _vectorize_reference

    return _vectorize_reference


def _same_lines(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(shapely.get_coordinates(x), shapely.get_coordinates(y)) for x, y in zip(a, b)
    )


def _network(seed: int, size: int) -> np.ndarray:
    """Crossing, touching and looping strokes of several widths (junctions, spurs, rings)."""
    from skimage.draw import circle_perimeter, line

    gen = np.random.default_rng(seed)
    mask = np.zeros((size, size), bool)
    for _ in range(int(gen.integers(1, 12))):
        r0, c0, r1, c1 = gen.integers(0, size, 4)
        rr, cc = line(r0, c0, r1, c1)
        for d in range(int(gen.integers(1, 4))):
            mask[np.clip(rr + d, 0, size - 1), cc] = True
    for _ in range(int(gen.integers(0, 3))):
        rr, cc = circle_perimeter(*gen.integers(8, size - 8, 2), int(gen.integers(3, 8)))
        mask[np.clip(rr, 0, size - 1), np.clip(cc, 0, size - 1)] = True
    mask &= gen.random(mask.shape) > 0.03  # small gaps to bridge
    return mask


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mask=st.one_of(MASKS, st.builds(_network, st.integers(0, 10_000), st.integers(24, 120))),
    min_length=st.floats(0.0, 30.0),
    gap=st.sampled_from([0.0, 1.5, 4.0, 8.0, 24.0]),
    piece=st.sampled_from([0.0, 3.0, 8.0]),
)
def test_mask_to_polylines_matches_reference(
    mask: np.ndarray, min_length: float, gap: float, piece: float
) -> None:
    from skimage.morphology import skeletonize

    from bordewatch.vectorize import trace_skeleton

    ref = _reference()
    skel = skeletonize(mask)
    old_paths, new_paths = ref.trace_skeleton(skel), trace_skeleton(skel)
    assert len(old_paths) == len(new_paths)
    assert all(np.array_equal(a, b) for a, b in zip(old_paths, new_paths))
    kw = {"min_length_px": min_length, "max_gap_px": gap, "min_piece_px": piece}
    assert _same_lines(ref.mask_to_polylines(mask, **kw), mask_to_polylines(mask, **kw))


def test_mask_to_polylines_matches_reference_on_a_large_network() -> None:
    ref = _reference()
    mask = np.zeros((600, 600), bool)
    for seed in range(25):  # 5 x 5 blocks of dense networks
        r, c = divmod(seed, 5)
        mask[r * 120 : (r + 1) * 120, c * 120 : (c + 1) * 120] = _network(seed, 120)
    kw = {"min_length_px": 20.0, "max_gap_px": 8.0, "min_piece_px": 4.0}
    old = ref.mask_to_polylines(mask, **kw)
    assert len(old) > 50  # a real test: many lines, junctions and bridged gaps
    assert _same_lines(old, mask_to_polylines(mask, **kw))


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n=st.integers(2, 40),
    step=st.sampled_from([0.5, 1.0, 1.7]),
    radius=st.integers(0, 3),
    integer=st.booleans(),
)
def test_sample_along_matches_reference(
    seed: int, n: int, step: float, radius: int, integer: bool
) -> None:
    from shapely.geometry import LineString

    from bordewatch.vectorize import sample_along

    gen = np.random.default_rng(seed)
    xy = np.cumsum(gen.normal(0.0, 4.0, (n, 2)), axis=0) + 30.0
    if integer:  # traced skeletons: pixel steps, with repeated vertices now and then
        xy = np.rint(xy)
    line = LineString(xy)
    if line.length == 0:
        return
    image = gen.random((64, 64)).astype(np.float32)
    d0, v0 = _reference().sample_along(line, image, step_px=step, radius=radius)
    d1, v1 = sample_along(line, image, step_px=step, radius=radius)
    assert np.array_equal(d0, d1) and np.array_equal(v0, v1)
    from bordewatch.vectorize import _interpolate

    points = shapely.get_coordinates(shapely.line_interpolate_point(line, d0))
    assert np.array_equal(_interpolate(shapely.get_coordinates(line), d0), points)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n_lines=st.integers(1, 30),
    kind=st.sampled_from(["pixel", "straight", "short", "float"]),
)
def test_end_table_matches_reference(seed: int, n_lines: int, kind: str) -> None:
    """Line ends found at once give the per-line walk's positions and directions bit for bit:
    pixel steps (ties of the running length with half a short line's length are common),
    straight unit steps, and segments too short for the gathered ones to reach 10 px."""
    from bordewatch.vectorize import _end_table

    gen = np.random.default_rng(seed)
    lines = []
    for _ in range(n_lines):
        n = int(gen.integers(2, 40))
        if kind == "pixel":
            steps = gen.integers(-1, 2, (n - 1, 2)).astype(np.float64)
        elif kind == "straight":
            steps = np.tile([[1.0, 0.0]], (n - 1, 1))
        elif kind == "short":
            steps = gen.normal(0.0, 0.2, (n - 1, 2))
        else:
            steps = gen.normal(0.0, 3.0, (n - 1, 2))
        xy = np.concatenate([[gen.uniform(0, 50, 2)], steps]).cumsum(axis=0)
        if np.hypot(*np.diff(xy, axis=0).T).sum() > 0:
            lines.append(xy)
    pos0, dirs0 = _reference()._end_table(lines)
    pos1, dirs1 = _end_table(lines)
    assert np.array_equal(pos0, pos1) and np.array_equal(dirs0, dirs1)
