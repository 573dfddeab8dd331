"""Separable Gaussian filters for 2-D float32 maps, cache-blocked and sharing work between orders.

``scipy.ndimage.gaussian_filter1d`` filters along axis 0 of a C-ordered array by copying each
column into a line buffer (strided reads and writes): on a 0.5 m tile (4280 x 2551 px) the
Hessian's three row passes took 0.35-0.5 s. Here that correlation is a sum of whole shifted rows,
taken in blocks of rows that stay in the CPU cache, with the pair sums ``x[i + j] ± x[i - j]``
shared by the even and odd orders asked for together: 4-5x faster
(``python benchmarks/gaussian.py``). Along axis 1 scipy's own contiguous passes are as fast, so
they are used as they are. Results equal scipy's up to float32 rounding: the weights are
scipy's (its response to an impulse); the sums run in float32, scipy's in float64.

Anything other than a 2-D float32 array or the ``nearest`` / ``reflect`` modes goes to scipy.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import ndimage

__all__ = ["gaussian_filter", "gaussian_filter1d"]

F32 = npt.NDArray[np.float32]

_MODES = ("nearest", "reflect")
_BLOCK_BYTES = 1 << 17
"""Bytes of one block of rows: its shifted copies stay in the L2 cache while summed."""


@functools.lru_cache(maxsize=64)
def _weights(sigma: float, order: int, truncate: float) -> tuple[float, ...]:
    """scipy's correlation weights ``w[k]``, ``out[i] = sum_k w[k] x[i + k - r]``."""
    radius = int(truncate * float(sigma) + 0.5)
    impulse = np.zeros(2 * radius + 1)
    impulse[radius] = 1.0
    response = ndimage.gaussian_filter1d(
        impulse, sigma, order=order, mode="constant", truncate=truncate
    )
    return tuple(float(v) for v in response[::-1])


def _source_index(idx: npt.NDArray[np.intp], n: int, mode: str) -> npt.NDArray[np.intp]:
    """Map indices beyond ``[0, n)`` back inside, as scipy's ``nearest`` or ``reflect``."""
    if mode == "nearest":
        return np.clip(idx, 0, n - 1)
    m = np.mod(idx, 2 * n)  # reflect: d c b a | a b c d | d c b a, period 2n
    return np.where(m < n, m, 2 * n - 1 - m)


def gaussian_filter1d(
    x: npt.NDArray[np.floating],
    sigma: float,
    *,
    axis: int,
    orders: Sequence[int] = (0,),
    mode: str = "nearest",
    truncate: float = 3.0,
) -> list[npt.NDArray[np.floating]]:
    """Gaussian (derivative) filters of one array along one axis, one result per order.

    Parameters
    ----------
    x : ndarray, shape (row, col)
    sigma : float
        Standard deviation in pixels.
    axis : {0, 1, -2, -1}
    orders : sequence of int
        Derivative orders (0: smoothing); the results come back in this order.
    mode : {"nearest", "reflect"}
        Edge handling, as in scipy.
    truncate : float
        Kernel radius in standard deviations (scipy's rule: ``int(truncate * sigma + 0.5)``).

    Returns
    -------
    list of ndarray
        ``scipy.ndimage.gaussian_filter1d(x, sigma, axis=axis, order=o, mode=mode,
        truncate=truncate)`` for each ``o``, up to float32 rounding.

    Examples
    --------
    >>> x = np.random.default_rng(0).random((40, 30), dtype=np.float32)
    >>> smooth, slope = gaussian_filter1d(x, 1.5, axis=0, orders=(0, 1))
    >>> ref = ndimage.gaussian_filter1d(x, 1.5, axis=0, order=1, mode="nearest", truncate=3.0)
    >>> bool(np.allclose(slope, ref, atol=1e-6))
    True
    """
    if axis % 2 == 1 or x.ndim != 2 or x.dtype != np.float32 or mode not in _MODES:
        # along contiguous rows scipy is as fast as the blocked sums
        kw = {"axis": axis, "mode": mode, "truncate": truncate}
        return [ndimage.gaussian_filter1d(x, sigma, order=o, **kw) for o in orders]
    x = np.ascontiguousarray(x)
    kernels = [_weights(float(sigma), int(o), float(truncate)) for o in orders]
    radius = (len(kernels[0]) - 1) // 2
    outs = [np.empty_like(x) for _ in orders]
    rows, cols = x.shape
    step = max(1, _BLOCK_BYTES // (4 * cols))
    even = any(o % 2 == 0 for o in orders)
    odd = any(o % 2 == 1 for o in orders)
    pair = np.empty((step, cols), np.float32)
    term = np.empty((step, cols), np.float32)
    for a in range(0, rows, step):
        b = min(a + step, rows)
        size = b - a
        lo, hi = a - radius, b + radius
        if lo >= 0 and hi <= rows:
            src = x[lo:hi]
        else:  # edge blocks: the rows beyond the edge, as the mode says
            src = x.take(_source_index(np.arange(lo, hi), rows, mode), axis=0)
        block = [out[a:b] for out in outs]
        for out, w in zip(block, kernels, strict=True):
            np.multiply(src[radius : radius + size], np.float32(w[radius]), out=out)
        p, t = pair[:size], term[:size]
        for j in range(1, radius + 1):
            plus, minus = src[radius + j : radius + j + size], src[radius - j : radius - j + size]
            for parity, wanted in ((0, even), (1, odd)):
                if not wanted:
                    continue
                (np.add if parity == 0 else np.subtract)(plus, minus, out=p)
                for out, w, o in zip(block, kernels, orders, strict=True):
                    if o % 2 == parity:  # even kernels are symmetric, odd ones antisymmetric
                        np.multiply(p, np.float32(w[radius + j]), out=t)
                        out += t
    return outs


def gaussian_filter(
    x: npt.NDArray[np.floating], sigma: float, *, mode: str = "nearest", truncate: float = 3.0
) -> npt.NDArray[np.floating]:
    """2-D Gaussian smoothing, ``scipy.ndimage.gaussian_filter`` up to float32 rounding.

    Examples
    --------
    >>> x = np.random.default_rng(1).random((30, 50), dtype=np.float32)
    >>> ref = ndimage.gaussian_filter(x, 2.0, mode="reflect", truncate=4.0)
    >>> bool(np.allclose(gaussian_filter(x, 2.0, mode="reflect", truncate=4.0), ref, atol=1e-6))
    True
    """
    if x.ndim != 2:
        raise ValueError(f"need a 2-D array, got shape {x.shape}")
    (y,) = gaussian_filter1d(x, sigma, axis=0, mode=mode, truncate=truncate)
    # in place, as scipy's gaussian_filter does its later passes: no third full-size array
    return ndimage.gaussian_filter1d(y, sigma, axis=1, mode=mode, truncate=truncate, output=y)
