"""The fast evidence implementations give the same results as the original definitions.

Frozen copies of the original (shifted-copy) functions live here; the module's faster versions
must match them exactly on random and synthetic inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bordewatch.detect import evidence as ev


def _shifted_ref(x, dr, dc):
    out = np.zeros_like(x)
    rows, cols = x.shape
    r0, r1 = max(0, -dr), min(rows, rows - dr)
    c0, c1 = max(0, -dc), min(cols, cols - dc)
    if r1 > r0 and c1 > c0:
        out[r0:r1, c0:c1] = x[r0 + dr : r1 + dr, c0 + dc : c1 + dc]
    return out


def _along_ref(x, tr, tc, n_steps):
    y = x
    for k in range(n_steps):
        s = 2**k
        y = y + _shifted_ref(y, round(s * tr), round(s * tc))
    h = (2**n_steps - 1) / 2
    y = _shifted_ref(y, -round(h * tr), -round(h * tc))
    return y * np.float32(1.0 / 2**n_steps)


def _oriented_energy_ref(rr, cc, rc, gr, gc, n_steps, *, n_orient=ev.N_ORIENT, edge_k=1.0):
    best = np.full(rr.shape, -np.inf, np.float32)
    orient = np.zeros(rr.shape, np.int8)
    for k in range(n_orient):
        th = np.pi * k / n_orient
        tr, tc = float(np.sin(th)), float(np.cos(th))
        nr, nc = tc, -tr
        across = np.float32(nr * nr) * rr + np.float32(2 * nr * nc) * rc + np.float32(nc * nc) * cc
        grad = np.float32(nr) * gr + np.float32(nc) * gc
        u = np.abs(_along_ref(across, tr, tc, n_steps))
        u -= np.float32(edge_k) * np.abs(_along_ref(grad, tr, tc, n_steps))
        better = u > best
        best = np.where(better, u, best)
        orient[better] = k
    return best, orient


def _line_peaks_ref(strength, orient, n_orient=ev.N_ORIENT, radius=2):
    keep = np.zeros(strength.shape, bool)
    for k in range(n_orient):
        th = np.pi * k / n_orient
        ok = orient == k
        for step in range(1, radius + 1):
            nr, nc = round(step * np.cos(th)), round(-step * np.sin(th))
            ok &= (strength >= _shifted_ref(strength, nr, nc)) & (
                strength >= _shifted_ref(strength, -nr, -nc)
            )
        keep |= ok
    return keep


def _belt_ref(za, zb, valid, gsd_m, *, n_orient=ev.N_ORIENT):
    f = max(1, round(ev.BELT_GRID_M / gsd_m))
    g = gsd_m * f
    if f > 1:
        za, zb = ev.block_mean(za, f), ev.block_mean(zb, f)
        wvalid = ev.block_mean(valid.astype(np.float32), f) > 0.99
    else:
        wvalid = valid
    sigma = ev.BELT_SIGMA_M / g
    ha, hb = ev._hessian_grad(za, sigma), ev._hessian_grad(zb, sigma)
    best = [np.full(za.shape, -np.inf, np.float32) for _ in range(3)]
    orient = np.zeros(za.shape, np.int8)
    n = ev.BELT_STEPS
    for k in range(n_orient):
        th = np.pi * k / n_orient
        tr, tc = float(np.sin(th)), float(np.cos(th))
        nr, nc = tc, -tr
        w = (np.float32(nr * nr), np.float32(2 * nr * nc), np.float32(nc * nc))
        acr, grd = [], []
        for rr, cc, rc, gr, gc in (ha, hb):
            acr.append(_along_ref(w[0] * rr + w[1] * rc + w[2] * cc, tr, tc, n))
            grd.append(_along_ref(np.float32(nr) * gr + np.float32(nc) * gc, tr, tc, n))
        acr.append(acr[0] - acr[1])
        grd.append(grd[0] - grd[1])
        for i in range(3):
            u = np.abs(acr[i]) - np.abs(grd[i])
            better = u > best[i]
            best[i] = np.where(better, u, best[i])
            if i == 2:
                orient[better] = k
    margin = int(np.ceil(3 * sigma)) + 2
    good = ndimage.binary_erosion(wvalid, iterations=margin, border_value=1)
    ua, ub = ev._to_units(best[0], good), ev._to_units(best[1], good)
    _, unit_a = ev._robust_stats(best[0], good)
    ud = ev._to_units(best[2], good, floor=0.5 * float(unit_a))
    return ua, ub, ud, _line_peaks_ref(ud, orient, n_orient) & good


def _scene(rng, shape):
    """Noise, texture and a few bright and dark lines in several directions."""
    rows, cols = shape
    img = rng.normal(0, 0.3, shape).astype(np.float32)
    img += ndimage.gaussian_filter(rng.normal(0, 3, shape), 4).astype(np.float32)
    r, c = np.mgrid[:rows, :cols]
    for ang, off, amp in ((0.3, 10, 2.0), (1.2, -5, -1.5), (2.4, 3, 1.0), (np.pi / 2, 0, 1.2)):
        d = np.abs((r - rows / 2) * np.cos(ang) - (c - cols / 2) * np.sin(ang) - off)
        img += np.float32(amp) * (d < 1.0)
    return img.astype(np.float32)


@pytest.mark.parametrize("shape", [(37, 41), (80, 23), (150, 96), (9, 120)])
@pytest.mark.parametrize("n_steps", [2, 4])
def test_along_matches_shifted_copies(shape, n_steps) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape).astype(np.float32)
    for k in range(12):
        th = np.pi * k / 12
        tr, tc = float(np.sin(th)), float(np.cos(th))
        np.testing.assert_array_equal(ev._along(x, tr, tc, n_steps), _along_ref(x, tr, tc, n_steps))


@pytest.mark.parametrize("shape", [(40, 50), (300, 70), (25, 260), (5, 7)])
@pytest.mark.parametrize(("n_steps", "edge_k"), [(4, 1.0), (3, 0.7), (5, 1.0)])
def test_oriented_energy_matches_original(shape, n_steps, edge_k) -> None:
    rng = np.random.default_rng(2)
    img = _scene(rng, shape)
    h = ev._hessian_grad(img, 0.8)
    best, orient = ev.oriented_energy(*h, n_steps, edge_k=edge_k)
    ref_best, ref_orient = _oriented_energy_ref(*h, n_steps, edge_k=edge_k)
    assert best.dtype == np.float32 and orient.dtype == np.int8
    assert best.shape == shape and orient.shape == shape
    np.testing.assert_allclose(best, ref_best, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(orient, ref_orient)
    # the scene's lines are found in several directions (the comparison is not trivial)
    if min(shape) >= 20:
        assert len(np.unique(orient)) > 3


def test_oriented_energy_random_fields_and_orient_count() -> None:
    rng = np.random.default_rng(3)
    h = tuple(rng.normal(size=(90, 110)).astype(np.float32) for _ in range(5))
    for n_orient in (4, 8, 12):
        best, orient = ev.oriented_energy(*h, 4, n_orient=n_orient)
        ref_best, ref_orient = _oriented_energy_ref(*h, 4, n_orient=n_orient)
        np.testing.assert_array_equal(best, ref_best)
        np.testing.assert_array_equal(orient, ref_orient)


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_line_peaks_matches_original(radius) -> None:
    rng = np.random.default_rng(4)
    img = _scene(rng, (120, 90))
    strength, orient = _oriented_energy_ref(*ev._hessian_grad(img, 0.8), 4)
    strength = np.maximum(strength, 0)
    got = ev.line_peaks(strength, orient, radius=radius)
    ref = _line_peaks_ref(strength, orient, radius=radius)
    np.testing.assert_array_equal(got, ref)
    assert 0 < got.sum() < got.size
    # negative values meet the zero filled outside the image like the original
    signed = rng.normal(size=(30, 40)).astype(np.float32)
    o = rng.integers(0, 12, size=(30, 40)).astype(np.int8)
    np.testing.assert_array_equal(ev.line_peaks(signed, o), _line_peaks_ref(signed, o))


@pytest.mark.parametrize("gsd", [1.0, 0.5])
def test_line_evidence_matches_original_pieces(gsd, monkeypatch) -> None:
    rng = np.random.default_rng(5)
    shape = (160, 140)
    before = np.stack([_scene(rng, shape) for _ in range(3)])
    after = before.copy()
    after[:, 60:62, :] += 2.0  # a new horizontal wall
    after += rng.normal(0, 0.05, after.shape).astype(np.float32)
    valid = np.ones(shape, bool)
    valid[:6, :20] = False
    bands = ("red", "green", "blue")
    scales = ev.scales_for_gsd(gsd)
    got = ev.line_evidence(before, after, valid, bands, scales)
    monkeypatch.setattr(ev, "oriented_energy", _oriented_energy_ref)
    monkeypatch.setattr(ev, "line_peaks", _line_peaks_ref)
    ref = ev.line_evidence(before, after, valid, bands, scales)
    for name in (
        "fence_after",
        "fence_before",
        "fence_diff",
        "fence_peak_after",
        "fence_peak_diff",
        "valid",
    ):
        np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-6, atol=1e-6)
    assert got.fence_peak_diff.any()
    za = ev._standardised(ev._fill_invalid(ev.to_gray(after, bands), valid), valid)
    zb = ev._standardised(ev._fill_invalid(ev.to_gray(before, bands), valid), valid)
    ua, ub, ud, peak = _belt_ref(za, zb, valid, gsd)
    np.testing.assert_allclose(got.belt.after, ua, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got.belt.before, ub, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got.belt.diff, ud, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got.belt.peak_diff, peak & ~got.belt.water)


def _derivatives_ref(gray, sigma):
    kw = {"mode": "nearest", "truncate": 3.0}
    f1 = ndimage.gaussian_filter1d
    r0 = f1(gray, sigma, axis=0, order=0, **kw)
    r1 = f1(gray, sigma, axis=0, order=1, **kw)
    r2 = f1(gray, sigma, axis=0, order=2, **kw)
    s2 = np.float32(sigma * sigma)
    gr = f1(r1, sigma, axis=1, order=0, **kw) * np.float32(sigma)
    gc = f1(r0, sigma, axis=1, order=1, **kw) * np.float32(sigma)
    return {
        "rr": f1(r2, sigma, axis=1, order=0, **kw) * s2,
        "cc": f1(r0, sigma, axis=1, order=2, **kw) * s2,
        "rc": f1(r1, sigma, axis=1, order=1, **kw) * s2,
        "gr": gr,
        "gc": gc,
        "grad": np.hypot(gr, gc),
    }


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.5])
def test_derivatives_in_place_match_original(sigma) -> None:
    gray = _scene(np.random.default_rng(9), (70, 90))
    got = ev._derivatives(gray, sigma, gradient=True)
    ref = _derivatives_ref(gray, sigma)
    assert got.keys() == ref.keys()
    for key in ref:
        # the row passes sum in float32 (bordewatch.detect.gaussian), scipy in float64
        scale = float(np.abs(ref[key]).max())
        np.testing.assert_allclose(got[key], ref[key], rtol=0, atol=1e-6 * scale, err_msg=key)
    lean = ev._derivatives(gray, sigma, gradient=True, magnitude=False)
    assert "grad" not in lean and np.array_equal(lean["gc"], got["gc"])


@pytest.mark.parametrize("gsd", [0.5, 1.0, 3.0])
def test_lane_evidence_equals_compute_evidence(gsd) -> None:
    # the classical pipeline uses the lean per-epoch maps; they must be the full ones' exactly
    rng = np.random.default_rng(11)
    shape = (150, 170)
    image = np.stack([_scene(rng, shape) for _ in range(4)])
    image[:, 70:75, :] += 1.5  # a bright strip (lane)
    valid = np.ones(shape, bool)
    valid[:25, :40] = False
    bands = ("red", "green", "blue", "nir")
    scales = ev.scales_for_gsd(gsd)
    full = ev.compute_evidence(image, valid, bands, scales)
    lean = ev.lane_evidence(image, valid, bands, scales)
    np.testing.assert_array_equal(lean.gray, full.gray)
    f = lean.factor
    assert f == scales.coarse_factor
    assert lean.lane.shape == tuple(-(-n // f) for n in shape)
    assert lean.lane.max() > 3.0
    if f == 1:
        np.testing.assert_array_equal(lean.lane, full.lane)
        return
    # finer than 1 m the lane map stays on the working grid the full one is upsampled from;
    # only the margin kept from invalid pixels is drawn on that grid instead
    up = np.repeat(np.repeat(lean.lane, f, axis=0), f, axis=1)[: shape[0], : shape[1]]
    both = (up > 0) & (full.lane > 0)
    np.testing.assert_array_equal(up[both], full.lane[both])
    assert np.mean((up > 0) != (full.lane > 0)) < 0.03


def _block_mean_ref(x, f):
    rows, cols = x.shape
    pr, pc = (-rows) % f, (-cols) % f
    xp = np.pad(x, ((0, pr), (0, pc)), mode="edge") if pr or pc else x
    return xp.reshape(xp.shape[0] // f, f, xp.shape[1] // f, f).mean(axis=(1, 3), dtype=np.float32)


@pytest.mark.parametrize("f", [1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(64, 64), (67, 45), (5, 131)])
def test_block_mean_matches_reshape_mean_bit_for_bit(f, shape):
    rng = np.random.default_rng(f * 100 + shape[0])
    x = (rng.standard_normal(shape) * 7.0 + 3.0).astype(np.float32)
    got = ev.block_mean(x, f)
    ref = _block_mean_ref(x, f)
    assert got.dtype == np.float32 and got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("shape", [(2, 67, 45), (3, 8, 9)])
def test_block_mean_stacks_and_masks_match_per_slice(shape):
    rng = np.random.default_rng(shape[1])
    stack = rng.standard_normal(shape).astype(np.float32)
    got = ev.block_mean(stack, 2)
    for band in range(shape[0]):
        np.testing.assert_array_equal(got[band], _block_mean_ref(stack[band], 2))
    mask = stack[0] > 0.3
    np.testing.assert_array_equal(
        ev.block_mean(mask, 3), _block_mean_ref(mask.astype(np.float32), 3)
    )


@pytest.mark.parametrize("f", [2, 3])
@pytest.mark.parametrize("shape", [(64, 64), (67, 45)])
def test_hessian_on_working_grid_matches_block_mean_of_full(f, shape):
    # row blocks are summed before the column passes: the same maps up to float32 rounding
    gray = _scene(np.random.default_rng(f + shape[1]), shape)
    got = ev._hessian_grad(gray, 1.0, f)
    ref = [ev.block_mean(x, f) for x in ev._hessian_grad(gray, 1.0)]
    assert len(got) == 5
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5 * float(np.abs(r).max()))
    assert max(float(np.abs(r).max()) for r in ref) > 0.01


@pytest.mark.parametrize("margin", [0, 1, 4])
def test_eroded_matches_binary_erosion(margin) -> None:
    rng = np.random.default_rng(5)
    for valid in (np.ones((40, 50), bool), rng.random((40, 50)) > 0.05):
        got = ev._eroded(valid, margin)
        ref = ndimage.binary_erosion(valid, iterations=margin, border_value=1) if margin else valid
        np.testing.assert_array_equal(got, ref)
        if margin and valid.all():
            assert got is not valid  # a copy: evidence keeps it as its own mask


@pytest.mark.parametrize(
    ("low", "high"),
    [(0.3, 0.8), (0.5, 0.5), (0.9, 0.4), (0.1, 0.1 + 1e-9), (-0.2, 0.05)],
)
def test_line_mask_matches_skimage_hysteresis(low: float, high: float) -> None:
    """The hysteresis mask equals skimage's, thresholds not representable in float32 included
    (skimage compares against ``low`` in float64 and ``high`` in float32)."""
    from skimage.filters import apply_hysteresis_threshold

    from bordewatch.detect.lines import LineParams, line_mask

    gen = np.random.default_rng(7)
    image = ndimage.gaussian_filter(gen.normal(size=(120, 90)), 1.5).astype(np.float32)
    image /= np.abs(image).max()
    image[5, :10] = np.float32(low)  # values at the thresholds themselves
    image[9, :10] = np.float32(high)
    params = LineParams(high=high, low=low, present=0.0, min_length_m=1.0, max_gap_m=0.0)
    want = apply_hysteresis_threshold(image, low, high)
    got = line_mask(image, params)
    assert want.any() and not want.all()  # a real test: some components kept, some not
    assert np.array_equal(got, want)
