"""The learned change detector: network shapes, weight files, inference and vectorisation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import shapely
import torch
from affine import Affine

from bordewatch.detect import model as m
from bordewatch.errors import ModelError
from bordewatch.imagery import TilePair
from bordewatch.results import DetectConfig, DetectorOutput
from bordewatch.tiling import Tile


def _tile(shape: tuple[int, int], gsd_m: float) -> Tile:
    rows, cols = shape
    aff = Affine.translation(500_000.0, 4_600_000.0) @ Affine.scale(gsd_m, -gsd_m)
    corners = [aff @ (0, 0), aff @ (cols, 0), aff @ (cols, rows), aff @ (0, rows)]
    return Tile(
        "t", 0, 0.0, 1.0, "EPSG:32652", tuple(aff)[:6], cols, rows, gsd_m, shapely.Polygon(corners)
    )


def _pair(shape=(72, 88), gsd_m=1.0, bands=4, rng=0) -> TilePair:
    g = np.random.default_rng(rng)
    before = g.random((bands, *shape), dtype=np.float32)
    after = np.clip(before + g.normal(0, 0.05, before.shape).astype(np.float32), 0, 1)
    valid = np.ones(shape, bool)
    valid[:5, :7] = False
    names = ("red", "green", "blue", "nir")[:bands]
    return TilePair(_tile(shape, gsd_m), before, after, valid, names)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("w") / "net.pt"
    m.save_model(m.build_model(rng=3), path)
    return str(path)


def test_forward_shapes_and_size() -> None:
    net = m.build_model(rng=0).eval()
    x = torch.rand(2, 3, 64, 96)
    with torch.inference_mode():
        out = net(x, x)
    assert out.shape == (2, len(m.CLASSES), 64, 96)
    assert sum(p.numel() for p in net.parameters()) <= 150_000


def test_version1_weights_without_full_resolution_branch_still_load(tmp_path) -> None:
    v1 = m.build_model(rng=2, full_width=0)
    assert not hasattr(v1, "enc0")
    m.save_model(v1, tmp_path / "v1.pt")
    loaded = m.load_model(tmp_path / "v1.pt")
    assert loaded.full_width == 0
    m.save_model(m.build_model(rng=2), tmp_path / "v2.pt")
    v2 = m.load_model(tmp_path / "v2.pt")
    assert v2.full_width == m.FULL_WIDTH
    x = torch.rand(1, 3, 32, 48)
    with torch.inference_mode():
        assert loaded(x, x).shape == v2(x, x).shape == (1, len(m.CLASSES), 32, 48)


def test_build_and_predict_are_deterministic(weights: str) -> None:
    a, b = m.build_model(rng=5), m.build_model(rng=5)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    pair = _pair()
    net = m.load_model(weights)
    p1 = m.predict_proba(pair.before, pair.after, pair.valid, net)
    p2 = m.predict_proba(pair.before, pair.after, pair.valid, net)
    assert np.array_equal(p1, p2)


def test_predict_proba_patches_sum_to_one_and_mask_invalid(weights: str) -> None:
    pair = _pair(shape=(150, 230))
    net = m.load_model(weights)
    proba = m.predict_proba(pair.before, pair.after, pair.valid, net, patch_px=64, overlap_px=8)
    assert proba.shape == (len(m.CLASSES), 150, 230) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(0), 1.0, atol=1e-4)
    assert np.all(proba[0, :5, :7] == 1.0)


@pytest.mark.parametrize("n", [520, 1024, 2048, 2056, 4096])
def test_patches_are_spread_evenly_and_cover_the_tile(n: int) -> None:
    size = m._patch_size(n, 512, 16)
    starts = m._patch_starts(n, size, 16)
    assert size % 8 == 0 and size <= 512 and starts[0] == 0 and starts[-1] + size == n
    # every pixel is taken from a patch at least 16 px inside it (or at the tile edge)
    assert all(b - a <= size - 32 for a, b in itertools.pairwise(starts))
    assert len(starts) == len(m._patch_starts(n, 512, 16))  # no more patches than before
    assert len(starts) * size <= 1.1 * n  # ...but much less redundant work


def test_loaded_weights_match_saved_model(tmp_path) -> None:
    net = m.build_model(rng=1)
    with torch.no_grad():  # make BatchNorm statistics non-trivial so fusion is exercised
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    sha = m.save_model(net, tmp_path / "a.pt")
    assert len(sha) == 64
    loaded = m.load_model(tmp_path / "a.pt")
    x, y = torch.randn(1, 3, 32, 40), torch.randn(1, 3, 32, 40)
    with torch.inference_mode():
        np.testing.assert_allclose(loaded(x, y).numpy(), net.eval()(x, y).numpy(), atol=1e-4)


def test_missing_weights_name_the_file_and_the_fix(tmp_path) -> None:
    path = tmp_path / "nope.pt"
    with pytest.raises(ModelError, match=r"nope\.pt.*make train"):
        m.load_model(path)


def test_corrupt_and_foreign_weights_are_refused(tmp_path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file at all")
    with pytest.raises(ModelError, match=r"bad\.pt"):
        m.load_model(bad)
    wrong = tmp_path / "wrong.pt"
    torch.save({"conv.weight": torch.zeros(3)}, wrong)
    with pytest.raises(ModelError, match="do not fit"):
        m.load_model(wrong)


class _Payload:
    def __reduce__(self):  # a pickle that would run code if unpickled without weights_only
        return (print, ("pwned",))


def test_weights_only_loading_refuses_pickled_code(tmp_path, capsys) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"x": _Payload()}, evil)
    with pytest.raises(ModelError, match=r"evil\.pt"):
        m.load_model(evil)
    assert "pwned" not in capsys.readouterr().out


def test_detect_model_returns_valid_output(weights: str) -> None:
    pair = _pair(shape=(96, 120), bands=3)
    out = m.detect_model(pair, DetectConfig(method="model", model_path=weights))
    assert isinstance(out, DetectorOutput)
    assert out.change.shape == (96, 120) and out.change.dtype == np.float32
    assert np.isnan(out.change[:5, :7]).all()
    finite = out.change[np.isfinite(out.change)]
    assert finite.size and finite.min() >= 0 and finite.max() <= 1
    for det in out.detections:
        assert det.cls in ("fence", "patrol_lane", "watchtower") and det.status == "new"
        assert 0.0 <= det.score <= 1.0


def test_predict_tile_resamples_fine_imagery(weights: str) -> None:
    pair = _pair(shape=(128, 96), gsd_m=0.25)
    proba = m.predict_tile(pair, m.load_model(weights))
    assert proba.shape == (len(m.CLASSES), 128, 96)
    np.testing.assert_allclose(proba.sum(0), 1.0, atol=1e-4)


def test_detections_from_proba_vectorises_in_tile_crs() -> None:
    pair = _pair(shape=(100, 120), gsd_m=2.0)
    proba = np.zeros((len(m.CLASSES), 100, 120), np.float32)
    proba[0] = 1.0
    proba[:, 50, 10:110] = 0.0  # a new fence along row 50, 100 px = 200 m
    proba[1, 50, 10:110] = 0.9
    proba[0, 50, 10:110] = 0.1
    proba[:, 20:23, 30:33] = 0.0  # a 3x3 px new tower
    proba[3, 20:23, 30:33] = 0.8
    proba[0, 20:23, 30:33] = 0.2
    dets = m.detections_from_proba(proba, pair)
    fences = [d for d in dets if d.cls == "fence"]
    towers = [d for d in dets if d.cls == "watchtower"]
    assert len(fences) == 1 and len(towers) == 1
    assert fences[0].geometry.length == pytest.approx(99 * 2.0, abs=4.0)
    assert fences[0].score == pytest.approx(0.9, abs=1e-3)
    x, y = towers[0].geometry.x, towers[0].geometry.y
    assert x == pytest.approx(500_000 + 31.5 * 2.0) and y == pytest.approx(4_600_000 - 21.5 * 2.0)


def test_normalise_epoch_uses_rgb_and_valid_pixels() -> None:
    g = np.random.default_rng(0)
    img = g.random((4, 40, 40), dtype=np.float32)
    valid = np.ones((40, 40), bool)
    valid[:10] = False
    img[:, :10] = 100.0  # invalid garbage must not shift the statistics
    out = m.normalise_epoch(img, valid)
    assert out.shape == (3, 40, 40)
    assert np.all(out[:, :10] == 0)
    np.testing.assert_allclose(out[:, valid].mean(axis=1), 0.0, atol=0.05)
    with pytest.raises(ValueError, match="band"):
        m.normalise_epoch(img[:2], valid)


def _planted_pair() -> TilePair:
    """Fields with an existing dark fence and two new ones (rows ~120 and ~200) at 1 m."""
    from scipy import ndimage
    from skimage.draw import line_aa

    g = np.random.default_rng(0)
    base = 0.35 + 0.3 * ndimage.gaussian_filter(g.normal(size=(384, 384)), 12)
    before = np.stack([base * k for k in (1.0, 1.05, 0.9)]).astype(np.float32)
    before += g.normal(0, 0.01, before.shape).astype(np.float32)
    after = before + g.normal(0, 0.01, before.shape).astype(np.float32)
    for img, rows in (
        (before, (40, 60)),
        (after, (40, 60)),
        (after, (120, 150)),
        (after, (200, 230)),
    ):
        rr, cc, val = line_aa(rows[0], 0, rows[1], 383)
        img[:, rr, cc] = img[:, rr, cc] * (1 - val) + 0.12 * val
    valid = np.ones((384, 384), bool)
    return TilePair(
        _tile((384, 384), 1.0),
        np.clip(before, 0, 1),
        np.clip(after, 0, 1),
        valid,
        ("red", "green", "blue"),
    )


def test_hybrid_keeps_classical_and_adds_confident_network_fences(weights, monkeypatch) -> None:
    from bordewatch.detect import METHODS, hybrid
    from bordewatch.detect.classical import detect_classical

    pair = _planted_pair()
    config = DetectConfig(method="hybrid", model_path=weights)
    classical = detect_classical(pair, config)
    assert any(d.status == "new" for d in classical.detections)
    shape = pair.valid.shape
    silent = np.zeros((len(m.CLASSES), *shape), np.float32)
    silent[0] = 1.0  # the network sees nothing new anywhere: no veto, the classical output
    monkeypatch.setattr(hybrid, "predict_tile", lambda p, net: silent)
    out = METHODS["hybrid"](pair, config)
    assert out.detections == classical.detections
    # the network confidently sees a new fence the classical path did not report (row 365)
    extra = silent.copy()
    extra[0, 365, 20:300] = 0.05
    extra[1, 365, 20:300] = 0.95
    monkeypatch.setattr(hybrid, "predict_tile", lambda p, net: extra)
    out = METHODS["hybrid"](pair, config)
    added = out.detections[len(classical.detections) :]
    assert out.detections[: len(classical.detections)] == classical.detections
    assert len(added) == 1 and added[0].cls == "fence" and added[0].status == "new"
    assert added[0].geometry.length == pytest.approx(279.0, abs=5.0)
    assert out.change.shape == shape and np.nanmax(out.change) <= 1.0


def _real_change_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "real_change.py"
    spec = importlib.util.spec_from_file_location("real_change", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_real_change_benchmark_on_shared_data(shared_data) -> None:
    rc = _real_change_module()
    levir = rc.load_levir(shared_data / "levir_cd")
    assert len(levir) >= 10
    assert all(b.shape == (3, 256, 256) and lab.dtype == bool for b, _, lab in levir)
    oscd = rc.load_oscd(shared_data / "oscd" / "rennes")
    assert oscd[0][0].shape[0] == 3 and oscd[0][2].any() and not oscd[0][2].all()
    for pairs, floor in ((levir, 0.15), (oscd, 0.3)):  # measured: 0.235 and 0.505
        masks = rc.otsu_mask([rc.classical_score(b, a) for b, a, _ in pairs])
        _, _, f1 = rc.pooled_f1(masks, [lab for _, _, lab in pairs])
        assert floor < f1 < 0.9
