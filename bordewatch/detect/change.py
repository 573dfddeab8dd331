"""Per-pixel change score 0–1 (change vector analysis on robustly standardised bands).

Each band of each epoch is standardised by its own median and MAD over the valid pixels, so a pure
gain/offset difference between the epochs scores ~0. The score is supporting evidence for the
detectors, never a detection by itself (seasons, sun, crops and clouds change pixels too).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bordewatch.detect import gaussian

__all__ = ["change_score"]

F32 = npt.NDArray[np.float32]


_BLOCK_BYTES = 1 << 18
"""Bytes of one block of rows of a band: the per-band arithmetic stays in the CPU cache."""


def _location_scale(
    band: F32, valid: npt.NDArray[np.bool_]
) -> tuple[np.float32, np.float32] | None:
    """Median and MAD (as a standard deviation) of a band's valid pixels, every 4th one.

    None where fewer than 16 are valid: the band then standardises to 0 everywhere.
    """
    v = band[::4, ::4][valid[::4, ::4]]
    if v.size < 16:
        return None
    med = float(np.median(v))
    mad = max(float(np.median(np.abs(v - med))) * 1.4826, 1e-4)
    return np.float32(med), np.float32(mad)


def _standardised(band: F32, stats: tuple[np.float32, np.float32] | None) -> F32:
    if stats is None:
        return np.zeros(band.shape, np.float32)
    out = np.subtract(band, stats[0], dtype=np.float32)
    out /= stats[1]
    return out


def change_score(
    before: F32, after: F32, valid: npt.NDArray[np.bool_], *, gsd_m: float = 1.0
) -> F32:
    """Change score of a co-registered pair.

    Parameters
    ----------
    before, after : ndarray of float32, shape (band, row, col)
    valid : ndarray of bool, shape (row, col)
    gsd_m : float
        Pixel size; the difference is smoothed over ~1 m to tolerate residual misregistration.

    Returns
    -------
    ndarray of float32, shape (row, col)
        0 (no change) to 1 (strong change); NaN where ``~valid``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.random((3, 32, 32), dtype=np.float32)
    >>> s = change_score(a, 0.5 * a + 0.2, np.ones((32, 32), bool))
    >>> float(np.nanmax(s)) < 0.05
    True
    """
    sigma = max(0.5, 0.7 / gsd_m)
    stats = [
        (_location_scale(before[b], valid), _location_scale(after[b], valid))
        for b in range(before.shape[0])
    ]
    acc = np.zeros(before.shape[1:], np.float32)
    step = max(1, _BLOCK_BYTES // (4 * acc.shape[1]))
    for r in range(0, acc.shape[0], step):  # block by block: the same sums, from the cache
        rows = slice(r, r + step)
        block = acc[rows]
        for b, (sb, sa) in enumerate(stats):
            d = _standardised(after[b, rows], sa)
            d -= _standardised(before[b, rows], sb)
            d *= d
            block += d
    acc = gaussian.gaussian_filter(acc, sigma, mode="nearest", truncate=3.0)
    acc /= np.float32(before.shape[0])
    mag = np.sqrt(acc, out=acc)
    ref = mag[::4, ::4][valid[::4, ::4]]
    base = max(float(np.median(ref)) if ref.size else 1.0, 0.05)
    z = mag
    z /= np.float32(base)
    # median pixel ~0.1, three times the median ~0.5
    z *= z
    score = z / (z + np.float32(9.0))
    score[~valid] = np.nan
    return score
