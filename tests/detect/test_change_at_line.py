"""``change_at_line``: the brightness change at a line against its surroundings.

The change maps are log ratios (:func:`smoothed_log_change`); ``_noise`` is 5 % pixel noise.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from bordewatch.detect.classical import NEW_FENCE_MIN_CHANGE, _drop_unchanged_new
from bordewatch.detect.lines import (
    LinePiece,
    change_at_line,
    change_window,
    smoothed_log_change,
)

LINE = shapely.LineString([(20, 60), (180, 60)])


def _noise(seed: int, shape=(120, 200)) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.05, shape).astype(np.float32)


def test_a_changed_strip_along_the_line_counts() -> None:
    diff = _noise(1)
    diff[58:63, :] -= 0.15  # a cleared, darker strip along the line
    assert change_at_line(LINE, diff, 1.0) > NEW_FENCE_MIN_CHANGE


def test_noise_and_changes_across_the_line_do_not() -> None:
    diff = _noise(2)
    assert change_at_line(LINE, diff, 1.0) < NEW_FENCE_MIN_CHANGE
    crossing = diff.copy()
    crossing[:, 60:64] += 0.3  # a strong change crossing the line (a road across it)
    crossing[:, 120:140] -= 0.2  # and a field that changed under part of it
    assert change_at_line(LINE, crossing, 1.0) < NEW_FENCE_MIN_CHANGE


def test_a_change_beside_the_line_is_not_its_own() -> None:
    diff = _noise(3)
    diff[75:80, :] += 0.3  # a new lane 15 px away
    assert change_at_line(LINE, diff, 1.0) < NEW_FENCE_MIN_CHANGE


def test_metres_scale_with_the_pixel_size() -> None:
    diff = _noise(4, (240, 400))
    diff[117:124, :] -= 0.15  # 3.5 m wide strip at 0.5 m pixels
    line = shapely.LineString([(40, 120), (360, 120)])
    assert change_at_line(line, diff, 0.5) > NEW_FENCE_MIN_CHANGE
    shifted = shapely.LineString([(40, 132), (360, 132)])  # 6 m off the strip
    assert change_at_line(shifted, diff, 0.5) < NEW_FENCE_MIN_CHANGE


def test_only_new_fences_are_dropped() -> None:
    rng = np.random.default_rng(5)
    before = (0.2 * rng.normal(1, 0.03, (120, 200))).astype(np.float32)
    after = (before * rng.normal(1, 0.03, before.shape)).astype(np.float32)
    valid = np.ones(before.shape, bool)
    items = [
        ("fence", LinePiece("new", 0.7, LINE)),
        ("fence", LinePiece("removed", 0.7, LINE)),
        ("patrol_lane", LinePiece("new", 0.7, LINE)),
    ]
    kept = _drop_unchanged_new(items, (before, after), valid, 1.0)
    assert [(c, p.status) for c, p in kept] == [("fence", "removed"), ("patrol_lane", "new")]
    after[58:63, :] *= 1.25  # a cleared, lighter strip along the line
    assert len(_drop_unchanged_new(items, (before, after), valid, 1.0)) == 3


@pytest.mark.parametrize("gsd", [1.0, 0.5])
def test_change_in_a_window_equals_the_whole_maps(gsd: float) -> None:
    """``_drop_unchanged_new`` computes the log change around each piece only: the same values."""
    rng = np.random.default_rng(11)
    shape = (300, 260)
    before = rng.uniform(0.05, 0.4, shape).astype(np.float32)
    after = (before * rng.normal(1, 0.1, shape)).astype(np.float32)
    valid = rng.random(shape) > 0.05
    sigma = max(0.5, 1.0 / gsd)
    whole = smoothed_log_change(before, after, valid, sigma)
    margin = int(3.0 * sigma + 0.5) + 1
    for _ in range(12):  # lines anywhere, some running off the map's edges
        x0, x1 = rng.uniform(-20, 280, 2)
        y0, y1 = rng.uniform(-20, 320, 2)
        line = shapely.LineString([(x0, y0), ((x0 + x1) / 2 + 7.3, (y0 + y1) / 2), (x1, y1)])
        rows, cols = change_window(line, gsd, shape, margin)
        part = smoothed_log_change(before[rows, cols], after[rows, cols], valid[rows, cols], sigma)
        got = change_at_line(line, part, gsd, window=(rows.start, cols.start, shape))
        assert got == change_at_line(line, whole, gsd)


def test_log_change_counts_a_fence_on_dark_ground_as_on_bright() -> None:
    # a tile of dark wood (left) and bright field (right): a fence and its strip darken the
    # ground by the same fraction on both; a change in units of the tile's brightness spread
    # would see a quarter of it on the dark side
    rng = np.random.default_rng(6)
    before = np.where(np.arange(200) < 100, 0.06, 0.35).astype(np.float32)[None, :].repeat(120, 0)
    before *= rng.normal(1, 0.03, before.shape).astype(np.float32)
    after = before * rng.normal(1, 0.03, before.shape).astype(np.float32)
    after[58:63, :] *= 0.8  # 20 % darker along the fence
    valid = np.ones(before.shape, bool)
    diff = smoothed_log_change(before, after, valid, 1.0)
    dark = change_at_line(shapely.LineString([(10, 60), (90, 60)]), diff, 1.0)
    bright = change_at_line(shapely.LineString([(110, 60), (190, 60)]), diff, 1.0)
    assert dark > NEW_FENCE_MIN_CHANGE and bright > NEW_FENCE_MIN_CHANGE
    assert abs(dark - bright) < 0.05
    assert abs(dark - np.log(1 / 0.8)) < 0.06


def test_log_change_is_zero_off_valid_pixels() -> None:
    before = np.full((20, 20), 0.2, np.float32)
    after = before * 2
    valid = np.zeros((20, 20), bool)
    valid[:, :10] = True
    diff = smoothed_log_change(before, after, valid, 0.5)
    assert diff[:, 15:].max() == 0.0
    np.testing.assert_allclose(diff[:, :8], np.log(2), rtol=1e-5)


def test_median_profile_is_the_per_offset_median() -> None:
    from bordewatch.detect.lines import _median_profile, _normals

    img = _noise(7)
    line = shapely.LineString([(15.3, 20.2), (90.0, 70.5), (180.0, 64.0)])
    pts, nrm = _normals(line)
    ks = np.arange(-12, 12.5, 0.5)
    h, w = img.shape

    def at(k: float) -> np.ndarray:  # nearest pixels k across, clipped to the image
        xs = np.clip(np.rint(pts[:, 0] + nrm[:, 0] * k).astype(int), 0, w - 1)
        ys = np.clip(np.rint(pts[:, 1] + nrm[:, 1] * k).astype(int), 0, h - 1)
        return img[ys, xs]

    ref = [float(np.median(at(k))) for k in ks]
    got = _median_profile(img, pts, nrm, ks)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, ref)
