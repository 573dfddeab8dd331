"""No new towers from texture that only stands out more in one epoch (haze, re-stretching).

A mottled field (dark and bright blobs of tower size) seen through thin haze in *before* and
clear in *after* is the same texture in both epochs; its compact dark-and-bright pieces must not
be called new watchtowers. A real new tower where *before* shows its usual contrast still is.
The memory-saving rewrites (per-band maps, window gathering) are pinned against the plain
formulas.
"""

from __future__ import annotations

import numpy as np
from conftest import make_tile
from scipy import ndimage

from bordewatch.detect import posts
from bordewatch.detect.posts import Tower, TowerParams, detect_towers, north_pixel_dir

SHAPE = (400, 400)
BANDS = ("red", "green", "blue")
PATCH = (slice(220, 380), slice(220, 380))
HAZE = np.array([0.75, 0.76, 0.78], np.float32)[:, None, None]


def _mottled_pair(seed: int, amp: float, haze: bool) -> tuple[np.ndarray, np.ndarray]:
    """A green field with a mottled patch; *before* seen through thin haze, or clear."""
    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.normal(size=SHAPE), 3.0)
    f /= f.std()
    where = np.zeros(SHAPE, np.float32)
    where[PATCH] = 1.0
    where = ndimage.gaussian_filter(where, 4)
    base = np.array([0.30, 0.36, 0.22], np.float32)[:, None, None]
    noise = 1 + 0.03 * rng.normal(size=(3, *SHAPE))
    after = (base * noise * np.exp(amp * where * np.tanh(1.5 * f))[None]).astype(np.float32)
    if haze:
        return (0.15 * after + 0.85 * HAZE).astype(np.float32), after
    return (after * (1 + 0.03 * rng.normal(size=after.shape))).astype(np.float32), after


def _add_tower(img: np.ndarray, row: int, col: int) -> None:
    """A 3 m white roof with a 12 m shadow to the north (sun in the south)."""
    img[:, row - 12 : row - 1, col - 1 : col + 2] *= 0.3
    img[:, row - 1 : row + 2, col - 1 : col + 2] = 0.85


def _new(before: np.ndarray, after: np.ndarray, sun: bool = False) -> list[Tower]:
    north = north_pixel_dir(make_tile(SHAPE).affine)
    dirs = (north, north) if sun else (None, None)
    out, _ = detect_towers(
        before,
        after,
        np.ones(SHAPE, bool),
        BANDS,
        1.0,
        TowerParams(),
        north=north,
        shadow_dirs=dirs,
    )
    return [t for s, _, t in out if s == "new"]


def test_hazed_before_mottled_texture_gives_no_new_tower() -> None:
    """The same mottled texture, faint in hazy *before* and strong in *after*: nothing is new.

    Without the local-contrast test this pair gave 5–11 phantom new towers per seed.
    """
    for seed, amp in ((0, 1.6), (1, 1.0), (2, 2.4)):
        before, after = _mottled_pair(seed, amp, haze=True)
        assert _new(before, after) == [], (seed, amp)


def test_same_texture_both_epochs_only_the_real_tower_is_new() -> None:
    """The mottled patch clear in both epochs and a new tower in the field: only it is new."""
    before, after = _mottled_pair(0, 1.6, haze=False)
    _add_tower(after, 120, 100)
    new = _new(before, after, sun=True)
    assert len(new) == 1
    assert abs(new[0].row - 120) <= 3 and abs(new[0].col - 100) <= 3
    assert all(not (220 <= t.row < 380 and 220 <= t.col < 380) for t in new)


def _maps(shade: np.ndarray) -> posts.TowerMaps:
    z = np.zeros_like(shade)
    return posts.TowerMaps(z[None], shade, z, 0.3, 0.1, np.ones(shade.shape, bool), 1.0)


def test_local_contrast_and_observable() -> None:
    """Local texture steps ignore one small object; a change is kept only where both epochs see."""
    rng = np.random.default_rng(3)
    shade = (0.1 * rng.normal(size=(120, 120))).astype(np.float32)
    with_obj = shade.copy()
    with_obj[55:62, 58:61] = 1.5  # a tower's shadow: does not move the robust spread
    rc = np.array([[60.0, 60.0]])
    a = posts.local_contrast(_maps(shade), rc, 64.0)[0]
    b = posts.local_contrast(_maps(with_obj), rc, 64.0)[0]
    assert 0.08 < a < 0.11 and abs(b - a) < 0.1 * a
    tower = ("new", 1.0, Tower(58.0, 60.0, 1.5, 0.5, 62.0, 60.0))
    params = TowerParams()
    assert posts._observable([tower], _maps(with_obj), _maps(shade), params) == [tower]
    assert posts._observable([tower], _maps(with_obj), _maps(0.2 * shade), params) == []


def test_darkening_of_a_formerly_bright_place_is_not_a_new_shadow() -> None:
    """Where the other epoch was bright over the shadow (sand the river now covers): no change."""
    rng = np.random.default_rng(4)
    shade = (0.1 * rng.normal(size=(120, 120))).astype(np.float32)
    this = shade.copy()
    this[55:62, 58:61] = 1.5
    other = shade.copy()
    tower = ("new", 1.0, Tower(58.0, 60.0, 1.5, 0.5, 60.0, 60.0))
    params = TowerParams()
    assert posts._observable([tower], _maps(this), _maps(other), params) == [tower]
    other[50:70, 50:70] -= 0.36  # a bright patch: 1.2 x was_bright x its 0.3 threshold
    assert float(other[59:62, 59:62].mean()) < -params.was_bright * 0.3
    assert posts._observable([tower], _maps(this), _maps(other), params) == []


def test_tower_maps_equal_the_plain_formulas() -> None:
    """Per-band maps (the memory-saving form) equal the whole-stack formulas, both GSD paths."""
    rng = np.random.default_rng(5)
    img = rng.uniform(0.05, 0.9, size=(4, 90, 110)).astype(np.float32)
    valid = np.ones((90, 110), bool)
    valid[:10, :30] = False
    params = TowerParams()
    bands = ("red", "green", "blue", "nir")
    for gsd in (0.5, 1.0):
        m = posts.tower_maps(img, valid, bands, gsd, params)
        k = max(3, round(params.background_m / gsd) | 1)
        x = np.where(valid, img[:3], np.median(img[:3][:, valid], axis=1)[:, None, None])
        x = x.astype(np.float32)
        lr = np.empty_like(x)
        for j in range(3):
            lx = np.log(np.maximum(x[j], 0) + posts._EPS)
            lr[j] = lx - np.log(ndimage.uniform_filter(np.exp(lx), k, mode="nearest"))
        if gsd < 0.75:
            lr = ndimage.uniform_filter(lr, (1, 3, 3), mode="nearest")
        lr[:, ~valid] = 0
        mean = lr.mean(axis=0)
        roof = np.sqrt(((lr - mean) ** 2).sum(axis=0)) + np.maximum(mean, 0)
        np.testing.assert_array_equal(m.logratio, lr)
        np.testing.assert_array_equal(m.shade, -mean)
        np.testing.assert_array_equal(m.roof, roof.astype(np.float32))
        assert m.shade.dtype == m.roof.dtype == np.float32


def test_best_shift_diff_equals_padded_reference() -> None:
    """Gathered windows (no padded tile copies) give the edge-padded result, corners included."""
    rng = np.random.default_rng(6)
    a = rng.normal(size=(3, 40, 50)).astype(np.float32)
    b = rng.normal(size=(3, 40, 50)).astype(np.float32)
    rc = np.array([[0.0, 0.0], [39.0, 49.0], [20.2, 25.7], [2.0, 47.0]])
    half, shift = 2, 3
    pad = half + shift
    ap = np.pad(a, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    bp = np.pad(b, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    want = []
    for r, c in np.rint(rc).astype(int).tolist():
        r, c = r + pad, c + pad
        pa = ap[:, r - half : r + half + 1, c - half : c + half + 1]
        want.append(
            min(
                float(
                    np.abs(
                        pa
                        - bp[
                            :, r + dr - half : r + dr + half + 1, c + dc - half : c + dc + half + 1
                        ]
                    ).mean()
                )
                for dr in range(-shift, shift + 1)
                for dc in range(-shift, shift + 1)
            )
        )
    got = posts._best_shift_diff(a, b, rc, half, shift)
    np.testing.assert_allclose(got, np.array(want), rtol=1e-6)  # float64 vs float32 sums
    own = posts._best_shift_diff(a, None, rc, half, 0)
    assert own[2] == float(np.abs(a[:, 18:23, 24:29]).mean())
