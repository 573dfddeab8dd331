"""The blocked Gaussian filters give scipy.ndimage's results up to float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bordewatch.detect import gaussian


@pytest.mark.parametrize("mode", ["nearest", "reflect"])
@pytest.mark.parametrize(
    ("shape", "sigma"),
    [
        ((300, 70), 1.0),  # many row blocks, interior and edge ones
        ((5, 9), 2.5),  # kernel radius beyond the array: repeated reflection
        ((1, 12), 0.7),
        ((40, 1), 4.0),
    ],
)
def test_row_filters_equal_scipy(mode, shape, sigma):
    x = np.random.default_rng(sum(shape)).normal(size=shape).astype(np.float32)
    orders = (0, 1, 2)
    got = gaussian.gaussian_filter1d(x, sigma, axis=0, orders=orders, mode=mode, truncate=3.0)
    for order, g in zip(orders, got, strict=True):
        ref = ndimage.gaussian_filter1d(x, sigma, axis=0, order=order, mode=mode, truncate=3.0)
        assert g.dtype == np.float32 and g.shape == x.shape
        np.testing.assert_allclose(g, ref, rtol=0, atol=2e-6)


def test_one_order_at_a_time_equals_all_together():
    x = np.random.default_rng(3).random((64, 33), dtype=np.float32)
    together = gaussian.gaussian_filter1d(x, 1.3, axis=0, orders=(2, 0, 1))
    for order, t in zip((2, 0, 1), together, strict=True):
        (alone,) = gaussian.gaussian_filter1d(x, 1.3, axis=0, orders=(order,))
        np.testing.assert_array_equal(alone, t)


def test_first_derivative_has_scipys_sign():
    ramp = np.tile(np.arange(20, dtype=np.float32)[:, None], (1, 4))  # rises down the rows
    (slope,) = gaussian.gaussian_filter1d(ramp, 1.0, axis=0, orders=(1,))
    assert np.all(slope[5:15] > 0.99)  # +1 per row (scipy: 0.996 with the truncated kernel)


@pytest.mark.parametrize("mode", ["nearest", "reflect"])
def test_2d_filter_equals_scipy(mode):
    x = np.random.default_rng(7).random((123, 457), dtype=np.float32)
    for sigma, truncate in ((0.8, 3.0), (2.0, 4.0)):
        ref = ndimage.gaussian_filter(x, sigma, mode=mode, truncate=truncate)
        got = gaussian.gaussian_filter(x, sigma, mode=mode, truncate=truncate)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)


def test_other_inputs_go_to_scipy_unchanged():
    rng = np.random.default_rng(11)
    x64 = rng.random((30, 20))
    (got,) = gaussian.gaussian_filter1d(x64, 1.5, axis=0, mode="nearest")
    ref = ndimage.gaussian_filter1d(x64, 1.5, axis=0, mode="nearest", truncate=3.0)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, ref)
    x = rng.random((30, 20), dtype=np.float32)
    (got,) = gaussian.gaussian_filter1d(x, 1.5, axis=0, mode="wrap")
    np.testing.assert_array_equal(
        got, ndimage.gaussian_filter1d(x, 1.5, axis=0, mode="wrap", truncate=3.0)
    )


def test_2d_filter_refuses_other_ranks():
    with pytest.raises(ValueError, match="2-D"):
        gaussian.gaussian_filter(np.zeros((2, 3, 4), np.float32), 1.0)
