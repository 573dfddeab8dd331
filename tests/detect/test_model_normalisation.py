"""The network's input normalisation: local statistics per epoch, independent of the tile size.

Version 2 standardised each epoch over the whole tile (at 0.5 m ~2000 × 4000 px) at inference but
over a 200–400 m scene in training, so far-away clouds, snow, water or haze changed what the
network saw at a fence. ``normalise_pair`` (training and inference) fixes that; these tests pin it.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from affine import Affine
from scipy import ndimage

from bordewatch.detect import model as m
from bordewatch.tiling import Tile


def _tile(shape: tuple[int, int], gsd_m: float = 0.5) -> Tile:
    rows, cols = shape
    aff = Affine.translation(500_000.0, 4_600_000.0) @ Affine.scale(gsd_m, -gsd_m)
    corners = [aff @ (0, 0), aff @ (cols, 0), aff @ (cols, rows), aff @ (0, rows)]
    return Tile(
        "t", 0, 0.0, 1.0, "EPSG:32652", tuple(aff)[:6], cols, rows, gsd_m, shapely.Polygon(corners)
    )


def _fields(shape: tuple[int, int], rng: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Textured before/after RGB with a new dark line, plus a far-away bright 'snow' block."""
    g = np.random.default_rng(rng)
    base = 0.3 + 0.08 * ndimage.gaussian_filter(g.normal(size=shape), 6) * 6
    before = np.stack([base * k for k in (1.0, 1.05, 0.85)]).astype(np.float32)
    before += g.normal(0, 0.01, before.shape).astype(np.float32)
    after = 0.7 * before + 0.1  # hazier, lower-contrast after (radiometry not matched)
    after[:, 200, 40:600] = 0.08  # a new dark fence
    # beyond column 1024: snow and cloud (bright, uniform) in both epochs
    before[:, :, 1100:] = 0.9
    after[:, :, 1100:] = 0.95
    valid = np.ones(shape, bool)
    valid[900:, 1300:1700] = False  # a masked cloud
    return np.clip(before, 0, 1), np.clip(after, 0, 1).astype(np.float32), valid


def test_normalised_input_does_not_depend_on_the_tile_size() -> None:
    before, after, valid = _fields((1024, 2048), 0)
    small = m.normalise_pair(before[:, :, :1024], after[:, :, :1024], valid[:, :1024])
    large = m.normalise_pair(before, after, valid)
    reach = int(3 * m.NORM_SIGMA_PX) + 2 * m.NORM_BLOCK_PX  # the statistics' window
    for s, big in zip(small, large):
        np.testing.assert_array_equal(s[:, :, : 1024 - reach], big[:, :, : 1024 - reach])
        assert s.shape == (3, 1024, 1024) and s.dtype == np.float32
    # ...whereas the former per-epoch, tile-wide standardisation saw the snow and the cloud
    old_small = m.normalise_epoch(after[:, :, :1024], valid[:, :1024])
    old_large = m.normalise_epoch(after, valid)
    assert np.abs(old_small - old_large[:, :, :1024]).max() > 0.5


def test_prediction_of_a_patch_does_not_depend_on_the_tile_size(tmp_path) -> None:
    """The same ground gives the same probabilities on a small tile and inside a larger one.

    With the former tile-wide standardisation of each epoch the snow beyond column 1100 moved
    every probability in the left half (measured max difference 0.07 with these weights).
    """
    path = tmp_path / "net.pt"
    m.save_model(m.build_model(rng=3), path)
    net = m.load_model(path)
    before, after, valid = _fields((320, 2048), 1)
    kw = {"patch_px": 2048, "overlap_px": 16}  # one patch each, so only the inputs differ
    small = m.predict_proba(before[:, :, :1024], after[:, :, :1024], valid[:, :1024], net, **kw)
    large = m.predict_proba(before, after, valid, net, **kw)
    keep = 1024 - int(3 * m.NORM_SIGMA_PX) - 2 * m.NORM_BLOCK_PX - 64  # minus receptive field
    np.testing.assert_allclose(small[:, 64:-64, :keep], large[:, 64:-64, :keep], atol=1e-4)


def test_haze_over_part_of_the_tile_is_not_seen_as_change() -> None:
    """A thin cloud or haze over the right half only: both halves still look unchanged.

    The former tile-wide statistics mixed the hazy and the clear half, so neither half's
    *after* matched its *before* (max |after - before| 1.1 and 2.8 in input units).
    """
    g = np.random.default_rng(2)
    tex = ndimage.gaussian_filter(g.normal(size=(64, 1536)), 2)
    tex /= tex.std()
    before = np.stack([0.35 + 0.1 * tex] * 3).astype(np.float32)
    after = before.copy()
    after[:, :, 768:] = 0.5 * before[:, :, 768:] + 0.35  # hazy: brighter, half the contrast
    valid = np.ones((64, 1536), bool)
    xb, xa = m.normalise_pair(before, after, valid)
    far = int(3 * m.NORM_SIGMA_PX) + 2 * m.NORM_BLOCK_PX  # beyond the window from the haze edge
    for cols in (slice(0, 768 - far), slice(768 + far, None)):
        assert np.abs(xa[:, :, cols] - xb[:, :, cols]).max() < 0.1  # the std floor: ~0.07
    old = m.normalise_epoch(after, valid) - m.normalise_epoch(before, valid)
    assert np.abs(old[:, :, : 768 - far]).max() > 0.5


def test_invalid_pixels_do_not_count_and_uniform_ground_is_not_amplified() -> None:
    g = np.random.default_rng(3)
    img = (0.5 + g.normal(0, 0.002, (4, 300, 300))).astype(np.float32)  # calm water or snow
    valid = np.ones((300, 300), bool)
    valid[:60] = False
    garbage = img.copy()
    garbage[:, :60] = 100.0  # nodata garbage must not shift the statistics
    xb, _ = m.normalise_pair(img, img, valid)
    gb, ga = m.normalise_pair(garbage, garbage, valid)
    np.testing.assert_allclose(gb, xb, atol=1e-5)
    assert np.all(xb[:, :60] == 0) and np.all(ga[:, :60] == 0)
    # 0.002 of sensor noise on uniform ground stays well below 1 (a per-window z-score gives ~1)
    assert np.abs(xb[:, valid]).std() < 0.5


def test_normalise_pair_checks_its_input() -> None:
    img = np.zeros((3, 40, 40), np.float32)
    with pytest.raises(ValueError, match="band"):
        m.normalise_pair(img[:2], img, np.ones((40, 40), bool))
    with pytest.raises(ValueError, match="valid"):
        m.normalise_pair(img, img, np.ones((40, 41), bool))


def test_training_scenes_use_the_inference_normalisation(monkeypatch) -> None:
    """``synth_scene`` standardises through the very function ``predict_proba`` uses."""
    import bordewatch.train as train

    calls = []

    def spy(before, after, valid):
        out = m.normalise_pair(before, after, valid)
        calls.append(out)
        return out

    monkeypatch.setattr(train, "normalise_pair", spy)
    scene = train.synth_scene(5, size_px=96)
    assert len(calls) == 1
    assert scene.before is calls[0][0] and scene.after is calls[0][1]
