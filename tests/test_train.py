"""Training: truth rasterisation, batches, loss, metrics and a tiny end-to-end run."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import shapely
import torch

from bordewatch.detect import model as m
from bordewatch.train import (
    CLASS_WEIGHTS,
    IGNORE,
    Scene,
    TrainConfig,
    class_f1,
    loss_fn,
    rasterise_truth,
    sample_batch,
    soften_target,
    synth_scene,
    train,
)


@dataclass(frozen=True)
class _Truth:
    cls: str
    status: str
    geometry: shapely.Geometry
    observable: bool = True
    width_m: float = 0.5


def _stand_in(seed: int, size: int = 96) -> Scene:
    """Random texture; *after* gains one bright new line (class 1) per scene."""
    g = np.random.default_rng(seed)
    before = g.normal(0, 1, (3, size, size)).astype(np.float32)
    after = before + g.normal(0, 0.2, before.shape).astype(np.float32)
    target = np.zeros((size, size), np.uint8)
    r = int(g.integers(8, size - 8))
    after[:, r, :] += 3.0
    target[r, :] = 1
    return Scene(before, after, target)


def test_rasterise_truth_classes_and_ignore() -> None:
    truth = [
        _Truth("fence", "new", shapely.LineString([(0, 10), (49, 10)])),
        _Truth("fence", "existing", shapely.LineString([(0, 30), (49, 30)])),
        _Truth("patrol_lane", "new", shapely.LineString([(20, 0), (20, 49)]), width_m=3.0),
        _Truth("watchtower", "new", shapely.Point(40, 40), width_m=4.0),
        _Truth("fence", "removed", shapely.LineString([(0, 45), (49, 45)])),
        _Truth("fence", "new", shapely.LineString([(5, 0), (5, 49)]), observable=False),
    ]
    valid = np.ones((50, 50), bool)
    valid[:, 48:] = False
    t = rasterise_truth(truth, (50, 50), gsd_m=1.0, valid=valid, pixel_centre=0.0)
    assert t[10, 30] == 1 and t[30, 40] == 4 and t[40, 20] == 2 and t[40, 40] == 3
    assert t[45, 30] == 0  # removed objects are background
    assert t[25, 5] == IGNORE and np.all(t[:, 48:] == IGNORE)
    assert t[10, 20] == 1  # fences win over lanes where they cross
    # pixel centres sit at integer coordinates: a 3 m lane at x=20 covers columns 19-21
    assert np.flatnonzero(t[25] == 2).tolist() == [19, 20, 21]
    # synth truth: pixel col spans [col, col + 1), so x = 20.5 is the centre of column 20
    t05 = rasterise_truth(
        [_Truth("patrol_lane", "new", shapely.LineString([(20.5, 0), (20.5, 49)]), width_m=3.0)],
        (50, 50),
        gsd_m=1.0,
    )
    assert np.flatnonzero(t05[25] == 2).tolist() == [19, 20, 21]


def test_sample_batch_shapes_and_positive_bias() -> None:
    scenes = [_stand_in(s) for s in range(3)]
    xb, xa, y = sample_batch(
        scenes, batch=6, crop_px=32, positive_fraction=1.0, rng=np.random.default_rng(0)
    )
    assert xb.shape == xa.shape == (6, 3, 32, 32) and y.shape == (6, 32, 32)
    assert all((y[i] == 1).any() for i in range(6))


def test_class_f1_strict_and_tolerant() -> None:
    t = np.zeros((20, 20), np.uint8)
    t[10] = 1
    p = np.zeros_like(t)
    p[11] = 1  # one pixel off
    assert class_f1(p, t)["fence"] == 0.0
    assert class_f1(p, t, tolerance_px=1)["fence"] == pytest.approx(1.0)
    assert class_f1(t, t)["any_new"] == 1.0
    t2 = t.copy()
    t2[10, :10] = IGNORE  # ignored truth does not count
    p2 = np.zeros_like(t)
    p2[10, 10:] = 1
    assert class_f1(p2, t2)["fence"] == pytest.approx(1.0)


def test_soften_target_grows_fences_and_ignores_their_neighbours() -> None:
    t = np.zeros((20, 20), np.uint8)
    t[10] = 1  # a 1-px new fence
    t[3, 3] = 3  # a 1-px new tower
    t[15:, :] = 4  # existing infrastructure is never softened
    t[0, 19] = IGNORE
    assert np.array_equal(soften_target(t, 0), t)
    s = soften_target(t, 1)
    assert np.array_equal(np.flatnonzero(s[:, 5] == IGNORE), [9, 11])
    assert s[10, 5] == 1 and s[2, 2] == IGNORE and s[3, 3] == 3 and s[6, 6] == 0
    g = soften_target(t, 1, grow_px=2)
    assert np.flatnonzero(g[:, 5] == 1).tolist() == [8, 9, 10, 11, 12]
    assert g[7, 5] == IGNORE and g[13, 5] == IGNORE and g[14, 5] == 0
    assert np.all(g[15:] == 4) and g[0, 19] == IGNORE and t[9, 5] == 0  # input untouched


def test_synth_scene_is_coregistered_like_the_pipeline() -> None:
    from bordewatch import align
    from bordewatch.imagery import TilePair
    from bordewatch.train import _scene_tile

    scene = synth_scene(11, size_px=256)
    assert scene.before.shape[0] == 3 and scene.before.shape[1:] == scene.target.shape
    assert set(np.unique(scene.target)) <= {0, 1, 2, 3, 4, IGNORE}
    valid = scene.target != IGNORE
    pair = TilePair(
        _scene_tile(valid.shape, 1.0), scene.before, scene.after, valid, ("red", "green", "blue")
    )
    residual = align.coregister(pair).shift_px
    assert float(np.hypot(*residual)) < 0.5  # the synth's misregistration has been removed


def test_a_few_steps_reduce_the_loss() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = m.build_model(rng=0)
    opt = torch.optim.AdamW(net.parameters(), lr=5e-3)
    weights = torch.tensor(CLASS_WEIGHTS)
    scenes = [_stand_in(s, 64) for s in range(4)]
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(30):
        xb, xa, y = sample_batch(scenes, batch=4, crop_px=64, positive_fraction=1.0, rng=rng)
        loss = loss_fn(
            net(torch.from_numpy(xb), torch.from_numpy(xa)), torch.from_numpy(y), weights
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_train_writes_loadable_weights_and_is_deterministic(tmp_path) -> None:
    cfg = TrainConfig(
        epochs=2,
        steps_per_epoch=3,
        batch=2,
        crop_px=64,
        scenes_per_epoch=2,
        train_seeds=(0, 10),
        val_seeds=(100, 101),
    )
    r1 = train(tmp_path / "a.pt", cfg, source=_stand_in)
    r2 = train(tmp_path / "b.pt", cfg, source=_stand_in)
    assert r1.sha256 == r2.sha256 and len(r1.sha256) == 64
    assert r1.epochs_run == 2 and 0 <= r1.best_epoch < 2
    log = json.loads((tmp_path / "a.json").read_text())
    assert log["config"]["epochs"] == 2 and len(log["history"]) == 2
    assert "f1tol1_fence" in log["history"][0]
    net = m.load_model(tmp_path / "a.pt")
    assert sum(p.numel() for p in net.parameters()) > 0


def test_train_cli_passes_options(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    import bordewatch.train as tr
    from bordewatch.cli.main import cli

    seen = {}

    def fake_train(path, cfg):
        seen["path"], seen["cfg"] = path, cfg
        return tr.TrainReport(str(path), "ab" * 32, 1, 0, 1.0, ({"f1tol1_fence": 0.5},))

    monkeypatch.setattr(tr, "train", fake_train)
    args = ["train", "--out", str(tmp_path), "--epochs", "3", "--seed", "7", "--minutes", "2"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert seen["path"] == tmp_path / "bordewatch_siam.pt"
    cfg = seen["cfg"]
    assert (cfg.epochs, cfg.seed, cfg.minutes, cfg.device, cfg.threads) == (3, 7, 2.0, "cpu", 1)
    assert "f1tol1_fence=0.500" in res.output
    bad = CliRunner().invoke(cli, ["train", "--out", str(tmp_path), "--device", "tpu"])
    assert bad.exit_code == 2
