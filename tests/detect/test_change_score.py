"""The per-pixel change score: its definition, its invariance to gain and offset, its masks."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from bordewatch.detect.change import change_score


def _reference(before, after, valid, gsd_m):
    """The score as first written: whole-band arithmetic, scipy's Gaussian."""

    def standardise(band):
        v = band[::4, ::4][valid[::4, ::4]]
        if v.size < 16:
            return np.zeros_like(band)
        med = float(np.median(v))
        mad = max(float(np.median(np.abs(v - med))) * 1.4826, 1e-4)
        return (band - np.float32(med)) / np.float32(mad)

    acc = np.zeros(before.shape[1:], np.float32)
    for b in range(before.shape[0]):
        d = standardise(after[b]) - standardise(before[b])
        acc += d * d
    sigma = max(0.5, 0.7 / gsd_m)
    acc = ndimage.gaussian_filter(acc, sigma, mode="nearest", truncate=3.0) / before.shape[0]
    mag = np.sqrt(acc)
    base = max(float(np.median(mag[::4, ::4][valid[::4, ::4]])), 0.05)
    z = (mag / base) ** 2
    score = z / (z + 9.0)
    score[~valid] = np.nan
    return score


def _pair(shape=(300, 500), seed=0):
    rng = np.random.default_rng(seed)
    before = rng.random((3, *shape), dtype=np.float32)
    after = (0.8 * before + 0.1 + 0.02 * rng.standard_normal((3, *shape))).astype(np.float32)
    valid = np.ones(shape, bool)
    valid[:40, :60] = False  # a cloud
    return before, after, valid


def test_equals_the_whole_band_definition_across_row_blocks():
    before, after, valid = _pair()  # 300 rows: several blocks of rows
    after[:, 150:170, 200:400] += 0.5  # a new bright strip
    got = change_score(before, after, valid, gsd_m=0.5)
    ref = _reference(before, after, valid, 0.5)
    np.testing.assert_array_equal(np.isnan(got), ~valid)
    np.testing.assert_allclose(got[valid], ref[valid], rtol=0, atol=1e-5)


def test_gain_and_offset_alone_score_low_and_new_things_high():
    before, after, valid = _pair(seed=1)
    quiet = change_score(before, after, valid)
    assert np.nanpercentile(quiet, 99) < 0.2
    after[:, 100:120, 100:300] += 0.6
    loud = change_score(before, after, valid)
    assert np.nanmedian(loud[102:118, 110:290]) > 0.8
    assert np.nanmedian(loud[200:, :]) < 0.2


def test_a_band_without_enough_valid_samples_counts_as_unchanged():
    before, after, valid = _pair(shape=(64, 64), seed=2)
    valid[:] = False
    valid[:8, :8] = True  # 4 samples on the every-4th-pixel grid: too few to standardise
    got = change_score(before, after, valid)
    assert np.all(np.isnan(got[~valid]))
    assert np.all(np.isfinite(got[valid]))
    ref = _reference(before, after, valid, 1.0)
    np.testing.assert_allclose(got[valid], ref[valid], rtol=0, atol=1e-6)
