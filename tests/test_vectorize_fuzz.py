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
