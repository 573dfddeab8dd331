"""Per-pixel change score 0–1 (change vector analysis on robustly standardised bands).

Each band of each epoch is standardised by its own median and MAD over the valid pixels, so a pure
gain/offset difference between the epochs scores ~0. The score is supporting evidence for the
detectors, never a detection by itself (seasons, sun, crops and clouds change pixels too).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

__all__ = ["change_score"]

F32 = npt.NDArray[np.float32]


def _standardise(band: F32, valid: npt.NDArray[np.bool_]) -> F32:
    v = band[::4, ::4][valid[::4, ::4]]
    if v.size < 16:
        return np.zeros_like(band)
    med = float(np.median(v))
    mad = max(float(np.median(np.abs(v - med))) * 1.4826, 1e-4)
    out = np.subtract(band, np.float32(med), dtype=np.float32)
    out /= np.float32(mad)
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
    acc = np.zeros(before.shape[1:], np.float32)
    for b in range(before.shape[0]):  # in place: a few full-size float32 arrays at most
        d = _standardise(after[b], valid)
        d -= _standardise(before[b], valid)
        d *= d
        acc += d
        del d
    acc = ndimage.gaussian_filter(acc, sigma, mode="nearest", truncate=3.0)
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
