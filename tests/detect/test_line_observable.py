"""A line is only new (removed) where the other epoch could have shown it: texture contrast."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from bordewatch.detect import classical
from bordewatch.detect.lines import LinePiece, texture_contrast

LINE = shapely.LineString([(10, 60), (150, 60)])  # x = col, y = row: along row 60
VALID = np.ones((120, 160), bool)


def _ground(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.25 * (1 + 0.08 * rng.standard_normal(VALID.shape))).astype(np.float32)


def _road(img: np.ndarray) -> np.ndarray:
    img = img.copy()
    img[58:63] *= 1.8
    return img


def test_texture_contrast_keeps_gain_and_loses_a_veil():
    clear = _road(_ground(0))
    c = texture_contrast(LINE, clear, VALID, 1.0)
    assert c > 0.05
    # season, gain, a shadow: a log ratio keeps the texture
    assert texture_contrast(LINE, 0.5 * clear, VALID, 1.0) == pytest.approx(c, rel=0.1)
    # thin cloud adds light: the texture beneath, the road's included, fades
    veiled = 0.3 * clear + 0.6
    assert texture_contrast(LINE, veiled, VALID, 1.0) < 0.3 * c
    # 0.5 m pixels: steps ~1 m apart, same texture
    fine = np.repeat(np.repeat(clear, 2, axis=0), 2, axis=1)
    valid2 = np.ones(fine.shape, bool)
    line2 = shapely.affinity.scale(LINE, 2.0, 2.0, origin=(0, 0))
    assert texture_contrast(line2, fine, valid2, 0.5) == pytest.approx(c, rel=0.2)
    assert texture_contrast(LINE, clear, np.zeros_like(VALID), 1.0) == 0.0  # nothing valid


@pytest.mark.parametrize("cls", ["fence", "patrol_lane"])
def test_a_road_under_thin_cloud_before_is_not_new(cls):
    after = _road(_ground(1))
    items = [(cls, LinePiece("new", 0.8, LINE))]
    veiled = 0.3 * _road(_ground(2)) + 0.6
    assert classical._drop_unobservable(items, (veiled, after), VALID, 1.0) == []
    # a clear before (here darker: another season) can show the road was absent
    clear = 0.7 * _ground(2)
    assert classical._drop_unobservable(items, (clear, after), VALID, 1.0) == items
    # the same for removed lines, the epochs swapped; existing lines are not this test's
    gone = [(cls, LinePiece("removed", 0.8, LINE)), (cls, LinePiece("existing", 0.8, LINE))]
    assert classical._drop_unobservable(gone, (after, veiled), VALID, 1.0) == gone[1:]
