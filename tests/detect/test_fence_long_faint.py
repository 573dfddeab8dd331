"""Faint but long ridges of the difference are fences; faint short ones are not (issue 5).

The fence evidence is a mean over ~16 m along the line already; a ridge that stays above the
long-line threshold over twice the minimum fence length is as unlikely in noise as a short
ridge above the strong threshold.
"""

from __future__ import annotations

import numpy as np
import shapely

from bordewatch.detect.classical import (
    FENCE_HIGH,
    LONG_FENCE_FACTOR,
    LONG_FENCE_HIGH,
    _strong_or_long,
    fence_params,
)
from bordewatch.results import DetectConfig


def _ridges(rows_values_lengths: list[tuple[int, float, int]]) -> np.ndarray:
    strength = np.zeros((300, 200), np.float32)
    for row, value, length in rows_values_lengths:
        strength[row, 10 : 10 + length] = value
    return strength


def _found(lines: list[shapely.LineString], row: int) -> float:
    """Length of the traced lines lying on ``row``."""
    band = shapely.box(0, row - 1.5, 200, row + 1.5)
    return sum(line.intersection(band).length for line in lines)


def test_long_faint_ridge_is_traced_short_faint_is_not() -> None:
    params = fence_params(DetectConfig())
    min_px = params.min_length_m  # 1 m pixels
    faint = 0.5 * (LONG_FENCE_HIGH + FENCE_HIGH)
    long_px = int(LONG_FENCE_FACTOR * min_px) + 20
    short_px = int(min_px) + 10
    strength = _ridges(
        [(50, faint, long_px), (150, faint, short_px), (250, FENCE_HIGH + 1, short_px)]
    )
    lines = _strong_or_long(strength, strength > 0, params, 1.0)
    assert _found(lines, 50) > 0.9 * (long_px - 1)
    assert _found(lines, 150) == 0.0
    assert _found(lines, 250) > 0.9 * (short_px - 1)


def test_strong_long_ridge_is_traced_once() -> None:
    params = fence_params(DetectConfig())
    strength = _ridges([(100, FENCE_HIGH + 2, 150)])
    lines = _strong_or_long(strength, strength > 0, params, 1.0)
    assert 0.9 * 149 < sum(line.length for line in lines) <= 151
