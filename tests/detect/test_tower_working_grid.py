"""Towers on fine tiles are searched on block means and placed back on the full grid."""

from __future__ import annotations

import numpy as np
import pytest

from bordewatch.detect import posts
from bordewatch.detect.evidence import block_mean
from bordewatch.detect.posts import Tower, TowerParams


@pytest.mark.parametrize(("gsd", "factor"), [(1.0, 1), (0.6, 1), (0.5, 2), (0.3, 3), (0.25, 4)])
def test_working_factor_keeps_the_pixel_at_most_the_working_size(gsd, factor):
    f = posts.working_factor(gsd, TowerParams())
    assert f == factor
    assert gsd * f <= TowerParams().working_gsd_m + 1e-9


def test_block_means_of_bands_and_of_a_validity_mask():
    x = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    got = block_mean(x, 2)
    assert got.shape == (3, 4)
    assert got[0, 0] == pytest.approx(x[:2, :2].mean())
    assert got[1, 2] == pytest.approx(x[2:4, 4:6].mean())
    assert got[2, 3] == pytest.approx(x[4, 6])  # a 1 x 1 corner block is its pixel
    assert got[2, 1] == pytest.approx(x[4, 2:4].mean())  # bottom edge: one row of two
    bands = np.stack([x, 2 * x])
    np.testing.assert_array_equal(block_mean(bands, 2)[0], got)  # per band, as in 2-D
    np.testing.assert_allclose(block_mean(bands, 2)[1], 2 * got, rtol=1e-6)
    valid = np.ones((5, 7), bool)
    valid[0, 0] = False
    # only the block with the hole fails
    assert (block_mean(valid.astype(np.float32), 2) >= 1.0).sum() == 11


def test_tower_found_on_blocks_lands_on_the_full_grid_pixel():
    # block k of a factor-2 grid covers full pixels 2k and 2k + 1: its centre is 2k + 0.5
    t = posts._on_full_grid(Tower(10.0, 4.0, 0.5, 0.3, 13.0, 5.0, label=7), 2)
    assert (t.row, t.col, t.shadow_row, t.shadow_col) == (20.5, 8.5, 26.5, 10.5)
    assert t.label == 0 and t.strength == 0.5 and t.roof == 0.3


def _scene(gsd: float, rng: np.random.Generator):
    """One new 4 m tower (bright roof, shadow to the north) on textured ground."""
    n = round(120 / gsd)
    base = 0.3 + 0.02 * rng.standard_normal((3, n, n)).astype(np.float32)
    after = base.copy()
    r0, c0, s = n // 2, n // 2, round(4 / gsd)
    after[:, r0 : r0 + s, c0 : c0 + s] = np.array([0.8, 0.2, 0.2], np.float32)[:, None, None]
    sh = round(8 / gsd)
    after[:, r0 - sh : r0, c0 : c0 + s] *= 0.35
    return base, after, (r0 + s / 2, c0 + s / 2)


@pytest.mark.parametrize("gsd", [0.5, 1.0])
def test_new_tower_found_at_the_same_place_on_fine_and_working_grids(gsd):
    before, after, (r, c) = _scene(gsd, np.random.default_rng(3))
    valid = np.ones(before.shape[1:], bool)
    found, _ = posts.detect_towers(
        before,
        after,
        valid,
        ("red", "green", "blue"),
        gsd,
        TowerParams(),
        north=(-1.0, 0.0),
        shadow_dirs=((-1.0, 0.0), (-1.0, 0.0)),
    )
    new = [t for st, _, t in found if st == "new"]
    assert len(new) == 1
    assert np.hypot(new[0].row - r, new[0].col - c) * gsd <= 3.0
