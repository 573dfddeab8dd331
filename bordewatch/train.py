"""Train the learned change detector on bordewatch's own synthetic scenes.

Data: :func:`bordewatch.synth.render_pair` scenes, drawn from training seeds (0–4999 by default;
held-out evaluation seeds are ≥ 9000 and never used), across presets and ground sample distances
0.5–2 m, co-registered and normalised as the pipeline does before detection. Each scene's truth
is rasterised into per-pixel targets (:func:`rasterise_truth`):
background, new fence, new patrol lane, new watchtower, existing infrastructure; pixels that are
invalid or under unobservable truth are ignored. Crops (biased towards rare thin classes) are
augmented with flips and 90° rotations and radiometric jitter; background pixels next to new
fences and towers are ignored in the loss (:func:`soften_target`).

Loss: class-weighted cross-entropy + soft Dice over the three *new* classes. Optimiser: AdamW with a
cosine schedule. The best epoch on the validation seeds (8000–8019) is saved with
:func:`bordewatch.detect.model.save_model`; a JSON log of every epoch sits beside it.
Deterministic on CPU for a given seed and thread count (``torch.use_deterministic_algorithms``).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import shapely
from scipy import ndimage

from bordewatch.atomic import atomic_write_text
from bordewatch.detect.model import CLASSES, FULL_WIDTH, NEW_CLASSES, normalise_pair

if TYPE_CHECKING:
    import torch

    from bordewatch.tiling import Tile

__all__ = [
    "IGNORE",
    "Scene",
    "TrainConfig",
    "TrainReport",
    "class_f1",
    "evaluate_scenes",
    "f1_counts",
    "f1_from_counts",
    "rasterise_truth",
    "sample_batch",
    "soften_target",
    "synth_scene",
    "train",
]

log = logging.getLogger(__name__)

IGNORE = 255
"""Target value for pixels that do not count in the loss or the metrics."""
CLASS_WEIGHTS: tuple[float, ...] = (1.0, 12.0, 4.0, 12.0, 2.0)
GSDS_M: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5, 2.0)
GSD_WEIGHTS: tuple[float, ...] = (3.0, 2.0, 2.0, 1.0, 1.0)
"""Relative frequency of each GSD in training: fine imagery, where fences are resolved, first."""
MIN_SCENE_M = 192.0
"""Smallest scene side rendered (the synth needs room for its river and villages)."""
_CLASS_ID = {"fence": 1, "patrol_lane": 2, "watchtower": 3}
# minimum half-width (px) a class is drawn with, so 1-px-wide objects stay visible as targets
_MIN_HALF_PX = {"fence": 0.75, "patrol_lane": 1.0, "watchtower": 1.5}


@dataclass(frozen=True, slots=True)
class Scene:
    """One training scene: normalised RGB epochs and per-pixel targets.

    Attributes
    ----------
    before, after : ndarray of float32, shape (3, row, col)
        Outputs of :func:`~bordewatch.detect.model.normalise_pair` (the same local statistics
        as at inference, so a scene's input does not depend on how large it was rendered).
    target : ndarray of uint8, shape (row, col)
        Class index into :data:`~bordewatch.detect.model.CLASSES`, or :data:`IGNORE`.
    """

    before: npt.NDArray[np.float32]
    after: npt.NDArray[np.float32]
    target: npt.NDArray[np.uint8]


SceneSource = Callable[[int], Scene]


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Training parameters (all recorded in the log and the model card)."""

    epochs: int = 12
    steps_per_epoch: int = 150
    batch: int = 8
    crop_px: int = 128
    scenes_per_epoch: int = 12
    pool_max: int = 240
    scene_px: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    train_seeds: tuple[int, int] = (0, 5000)
    val_seeds: tuple[int, int] = (8000, 8020)
    minutes: float | None = None
    device: str = "cpu"
    threads: int = 1
    positive_crop_fraction: float = 0.7
    full_width: int = FULL_WIDTH
    tolerance_px: int = 1
    grow_px: int = 0
    class_weights: tuple[float, ...] = CLASS_WEIGHTS


@dataclass(frozen=True, slots=True)
class TrainReport:
    """What :func:`train` did: the saved file, its checksum, and the per-epoch history."""

    path: str
    sha256: str
    epochs_run: int
    best_epoch: int
    seconds: float
    history: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    stopped_early: bool = False


def rasterise_truth(
    truth: Sequence[Any],
    shape: tuple[int, int],
    *,
    gsd_m: float,
    valid: npt.NDArray[np.bool_] | None = None,
    pixel_centre: float = 0.5,
) -> npt.NDArray[np.uint8]:
    """Per-pixel class targets from truth objects in *pixel* coordinates (x = col, y = row).

    Each object needs ``cls``, ``status``, ``geometry``, ``observable`` and ``width_m``. ``new``
    objects get their class; ``existing`` and ``upgraded`` ones class 4 (existing); ``removed``
    ones stay background. Unobservable objects and invalid pixels become :data:`IGNORE`. Later
    classes win overlaps (existing < lanes < fences < towers). ``pixel_centre`` is the coordinate
    of the first pixel's centre: 0.5 for :func:`bordewatch.synth.render_pair` truth (pixel
    ``col`` spans ``[col, col + 1)``), 0.0 for :mod:`bordewatch.vectorize` geometry.
    """
    from rasterio.features import rasterize

    layers: dict[int, list[shapely.Geometry]] = {4: [], 2: [], 1: [], 3: [], IGNORE: []}
    for obj in truth:
        cls = str(obj.cls)
        if cls not in _CLASS_ID or obj.status == "removed":
            continue
        half = max(float(obj.width_m) / 2.0 / gsd_m, _MIN_HALF_PX[cls])
        shape_px = shapely.buffer(
            obj.geometry, half, cap_style="flat" if cls != "watchtower" else "round"
        )
        if not obj.observable:
            layers[IGNORE].append(shape_px)
        elif obj.status == "new":
            layers[_CLASS_ID[cls]].append(shape_px)
        else:
            layers[4].append(shape_px)
    target = np.zeros(shape, dtype=np.uint8)
    for value, geoms in layers.items():
        geoms = [g for g in geoms if not g.is_empty]
        if geoms:
            rasterize([(g, value) for g in geoms], out=target, all_touched=False, dtype="uint8")
    if valid is not None:
        target[~valid] = IGNORE
    return target


def soften_target(
    target: npt.NDArray[np.uint8], tolerance_px: int, *, grow_px: int = 0
) -> npt.NDArray[np.uint8]:
    """Training targets that tolerate small misplacement of thin and small objects.

    New fences are first widened by ``grow_px`` pixels into the background (chessboard
    distance), so a 1-px fence becomes a band the network can localise and the vectoriser's
    skeleton returns to its centre line; then background pixels within ``tolerance_px`` of a new
    fence or a new watchtower become :data:`IGNORE`, so the loss neither rewards nor punishes
    predicting the object one pixel beside its rasterised truth. Validation metrics use the
    unsoftened targets.
    """
    out = target.copy()
    if grow_px > 0:
        struct = np.ones((2 * grow_px + 1,) * 2, bool)
        out[ndimage.binary_dilation(target == 1, struct) & (target == 0)] = 1
    if tolerance_px > 0:
        thin = (out == 1) | (out == 3)
        struct = np.ones((2 * tolerance_px + 1,) * 2, bool)
        out[ndimage.binary_dilation(thin, struct) & (out == 0)] = IGNORE
    return out


def synth_scene(seed: int, *, size_px: int = 384) -> Scene:
    """Render one synthetic pair with parameters drawn from ``seed`` (preset, GSD).

    The pair is co-registered and radiometrically normalised exactly as the pipeline does before
    detection (:func:`bordewatch.align.coregister`, :func:`bordewatch.align.normalise`) and
    standardised by :func:`~bordewatch.detect.model.normalise_pair` as at inference, so the
    network trains on what it will see; the synth misregisters *after* by up to 3 px, which would
    otherwise displace 1-px fences from their truth. GSDs are drawn with :data:`GSD_WEIGHTS`.
    """
    from bordewatch import align
    from bordewatch.imagery import TilePair
    from bordewatch.synth import render_pair

    rng = np.random.default_rng(seed)
    preset = str(rng.choice(_presets()))
    gsd = float(rng.choice(GSDS_M, p=np.asarray(GSD_WEIGHTS) / sum(GSD_WEIGHTS)))
    size_px = max(size_px, 8 * int(np.ceil(MIN_SCENE_M / gsd / 8)))
    sp = render_pair(size_px=(size_px, size_px), gsd_m=gsd, preset=preset, rng=seed)
    pair = TilePair(_scene_tile(sp.valid.shape, gsd), sp.before, sp.after, sp.valid, sp.bands)
    pair = align.normalise(align.coregister(pair))
    valid = np.asarray(pair.valid, dtype=bool)
    target = rasterise_truth(sp.truth, valid.shape, gsd_m=gsd, valid=valid)
    before, after = normalise_pair(pair.before, pair.after, valid)
    return Scene(before, after, target)


def _scene_tile(shape: tuple[int, int], gsd_m: float) -> Tile:
    """A north-up UTM tile grid for an in-memory synthetic scene (only its size and GSD matter)."""
    from affine import Affine

    from bordewatch.tiling import Tile

    rows, cols = shape
    aff = Affine.translation(500_000.0, 4_600_000.0) @ Affine.scale(gsd_m, -gsd_m)
    corners = [aff @ (0, 0), aff @ (cols, 0), aff @ (cols, rows), aff @ (0, rows)]
    return Tile(
        "synth",
        0,
        0.0,
        1.0,
        "EPSG:32652",
        tuple(aff)[:6],
        cols,
        rows,
        gsd_m,
        shapely.Polygon(corners),
    )


def _presets() -> tuple[str, ...]:
    import bordewatch.synth as synth

    names = getattr(synth, "PRESETS", None)
    if names is None:
        return ("demo", "hard", "nothing_new")
    return tuple(sorted(str(n) for n in names))


def _crop_origin(
    target: npt.NDArray[np.uint8], crop: int, positive: bool, rng: np.random.Generator
) -> tuple[int, int]:
    rows, cols = target.shape
    if positive:
        hits = np.flatnonzero((target >= 1) & (target <= 3))
        if hits.size:
            r, c = divmod(int(hits[rng.integers(hits.size)]), cols)
            r0 = int(np.clip(r - rng.integers(crop), 0, rows - crop))
            c0 = int(np.clip(c - rng.integers(crop), 0, cols - crop))
            return r0, c0
    return int(rng.integers(rows - crop + 1)), int(rng.integers(cols - crop + 1))


def _augment(
    xb: npt.NDArray[np.float32],
    xa: npt.NDArray[np.float32],
    y: npt.NDArray[np.uint8],
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    out = []
    for arr in (xb, xa, y[None]):
        arr = np.rot90(arr, k, axes=(1, 2))
        out.append(arr[:, :, ::-1] if flip else arr)
    # radiometric jitter per epoch (gain/offset after standardisation) and a little noise
    gain = rng.uniform(0.8, 1.25, size=(2, 3, 1, 1)).astype(np.float32)
    bias = rng.normal(0.0, 0.15, size=(2, 3, 1, 1)).astype(np.float32)
    xb2 = out[0] * gain[0] + bias[0] + rng.normal(0, 0.05, out[0].shape).astype(np.float32)
    xa2 = out[1] * gain[1] + bias[1] + rng.normal(0, 0.05, out[1].shape).astype(np.float32)
    return xb2, xa2, np.ascontiguousarray(out[2][0])


def sample_batch(
    scenes: Sequence[Scene],
    *,
    batch: int,
    crop_px: int,
    positive_fraction: float,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Random augmented crops: ``before, after (batch, 3, crop, crop)`` and targets ``(batch, crop, crop)``."""
    xb = np.empty((batch, 3, crop_px, crop_px), np.float32)
    xa = np.empty_like(xb)
    y = np.empty((batch, crop_px, crop_px), np.int64)
    for i in range(batch):
        s = scenes[int(rng.integers(len(scenes)))]
        r0, c0 = _crop_origin(s.target, crop_px, bool(rng.random() < positive_fraction), rng)
        sl = (slice(r0, r0 + crop_px), slice(c0, c0 + crop_px))
        b, a, t = _augment(s.before[:, sl[0], sl[1]], s.after[:, sl[0], sl[1]], s.target[sl], rng)
        xb[i], xa[i], y[i] = b, a, t
    return xb, xa, y


def loss_fn(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Class-weighted cross-entropy plus soft Dice (1 − mean Dice of the new classes)."""
    import torch
    from torch.nn import functional as F

    ce = F.cross_entropy(logits, target, weight=weights, ignore_index=IGNORE)
    keep = (target != IGNORE).unsqueeze(1).to(logits.dtype)
    prob = torch.softmax(logits, 1) * keep
    onehot = F.one_hot(target.clamp(max=len(CLASSES) - 1), len(CLASSES)).permute(0, 3, 1, 2)
    onehot = onehot.to(logits.dtype) * keep
    idx = list(NEW_CLASSES)
    inter = (prob[:, idx] * onehot[:, idx]).sum(dim=(0, 2, 3))
    denom = prob[:, idx].sum(dim=(0, 2, 3)) + onehot[:, idx].sum(dim=(0, 2, 3))
    dice = (2 * inter + 1.0) / (denom + 1.0)
    return ce + (1.0 - dice.mean())


def f1_counts(
    pred: npt.NDArray[np.integer], target: npt.NDArray[np.integer], *, tolerance_px: int = 0
) -> dict[str, npt.NDArray[np.int64]]:
    """Counts ``[tp_precision, n_pred, tp_recall, n_true]`` per new class and for any new change.

    :data:`IGNORE` pixels do not count. With ``tolerance_px > 0`` a predicted pixel is correct if
    truth of its class lies within that distance (and vice versa for recall), which is fairer to
    1-px-wide fences. Counts from several images add up (see :func:`f1_from_counts`).
    """
    keep = target != IGNORE
    groups = {CLASSES[c]: (c,) for c in NEW_CLASSES} | {"any_new": NEW_CLASSES}
    struct = np.ones((2 * tolerance_px + 1,) * 2, bool) if tolerance_px else None
    out = {}
    for name, cls in groups.items():
        p = np.isin(pred, cls) & keep
        t = np.isin(target, cls) & keep
        if struct is not None:
            tp_p = (p & ndimage.binary_dilation(t, struct)).sum()
            tp_r = (t & ndimage.binary_dilation(p, struct)).sum()
        else:
            tp_p = tp_r = (p & t).sum()
        out[name] = np.array([tp_p, p.sum(), tp_r, t.sum()], np.int64)
    return out


def f1_from_counts(counts: dict[str, npt.NDArray[np.int64]]) -> dict[str, float]:
    """F1 per group from (summed) :func:`f1_counts`; 1.0 where nothing was true nor predicted."""
    out = {}
    for name, (tp_p, n_pred, tp_r, n_true) in counts.items():
        if n_pred == 0 and n_true == 0:
            out[name] = 1.0
            continue
        prec = tp_p / n_pred if n_pred else 0.0
        rec = tp_r / n_true if n_true else 0.0
        out[name] = float(0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec))
    return out


def class_f1(
    pred: npt.NDArray[np.integer], target: npt.NDArray[np.integer], *, tolerance_px: int = 0
) -> dict[str, float]:
    """Pixel F1 per new class and for any new change (see :func:`f1_counts`)."""
    return f1_from_counts(f1_counts(pred, target, tolerance_px=tolerance_px))


def evaluate_scenes(
    model: torch.nn.Module, scenes: Sequence[Scene], device: str = "cpu"
) -> dict[str, float]:
    """Pixel F1 (strict and 1-px tolerant), counts pooled over ``scenes``."""
    import torch

    strict: dict[str, npt.NDArray[np.int64]] = {}
    tol: dict[str, npt.NDArray[np.int64]] = {}
    model.eval()
    with torch.inference_mode():
        for s in scenes:
            r, c = (n - n % 8 for n in s.target.shape)
            tb = torch.from_numpy(np.ascontiguousarray(s.before[None, :, :r, :c])).to(device)
            ta = torch.from_numpy(np.ascontiguousarray(s.after[None, :, :r, :c])).to(device)
            pred = model(tb, ta).argmax(1)[0].cpu().numpy()
            target = s.target[:r, :c]
            for acc, tol_px in ((strict, 0), (tol, 1)):
                for k, v in f1_counts(pred, target, tolerance_px=tol_px).items():
                    acc[k] = acc.get(k, 0) + v
    return {f"f1_{k}": v for k, v in f1_from_counts(strict).items()} | {
        f"f1tol1_{k}": v for k, v in f1_from_counts(tol).items()
    }


def _render(source: SceneSource, seeds: Iterable[int]) -> list[Scene]:
    """Scenes for ``seeds``; a seed the generator fails on is logged and skipped."""
    out = []
    for seed in seeds:
        try:
            out.append(source(seed))
        except Exception as err:  # one bad synthetic scene must not end a long run
            log.warning("scene seed %d skipped: %s: %s", seed, type(err).__name__, err)
    return out


def _scene_stream(cfg: TrainConfig) -> Iterator[list[int]]:
    lo, hi = cfg.train_seeds
    order = np.random.default_rng(cfg.seed).permutation(np.arange(lo, hi))
    for e in range(cfg.epochs):
        start = (e * cfg.scenes_per_epoch) % len(order)
        yield [int(s) for s in np.roll(order, -start)[: cfg.scenes_per_epoch]]


def train(
    out_path: str | Path,
    cfg: TrainConfig = TrainConfig(),
    *,
    source: SceneSource | None = None,
) -> TrainReport:
    """Train a fresh :class:`~bordewatch.detect.model.ChangeNet` and save the best epoch.

    Parameters
    ----------
    out_path : path
        Weight file to write (``*.pt``); a ``.json`` log with the same stem is written beside it.
    cfg : TrainConfig
    source : callable, optional
        ``seed -> Scene``; the default renders ``cfg.scene_px`` synthetic scenes (tests pass a
        stand-in). Each epoch adds ``cfg.scenes_per_epoch`` new scenes to a pool of at most
        ``cfg.pool_max`` (oldest dropped) that the epoch's crops are drawn from.
    """
    import torch

    from bordewatch.detect.model import build_model, save_model

    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    t0 = time.monotonic()
    out_path = Path(out_path)
    model = build_model(rng=cfg.seed, full_width=cfg.full_width).to(cfg.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * cfg.steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=total, pct_start=0.1
    )
    weights = torch.tensor(cfg.class_weights, dtype=torch.float32, device=cfg.device)
    if source is None:
        source = functools.partial(synth_scene, size_px=cfg.scene_px)
    rng = np.random.default_rng(cfg.seed)
    val = _render(source, range(*cfg.val_seeds))
    pool: list[Scene] = []
    history: list[dict[str, Any]] = []
    best, best_epoch, sha, stopped = -1.0, -1, "", False
    for epoch, seeds in enumerate(_scene_stream(cfg)):
        fresh = [
            replace(s, target=soften_target(s.target, cfg.tolerance_px, grow_px=cfg.grow_px))
            for s in _render(source, seeds)
        ]
        pool = [*pool, *fresh][-cfg.pool_max :]
        model.train()
        losses = []
        for _ in range(cfg.steps_per_epoch):
            xb, xa, y = sample_batch(
                pool,
                batch=cfg.batch,
                crop_px=cfg.crop_px,
                positive_fraction=cfg.positive_crop_fraction,
                rng=rng,
            )
            logits = model(torch.from_numpy(xb).to(cfg.device), torch.from_numpy(xa).to(cfg.device))
            loss = loss_fn(logits, torch.from_numpy(y).to(cfg.device), weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        metrics = evaluate_scenes(model, val, cfg.device)
        score = float(np.mean([metrics[f"f1tol1_{CLASSES[c]}"] for c in NEW_CLASSES]))
        row = {
            "epoch": epoch,
            "loss": float(np.mean(losses)),
            "seconds": round(time.monotonic() - t0, 1),
            **metrics,
        }
        history.append(row)
        log.info(
            "epoch %d: %s",
            epoch,
            {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()},
        )
        if score > best:
            best, best_epoch = score, epoch
            sha = save_model(model, out_path)
        if (
            cfg.minutes is not None
            and time.monotonic() - t0 > 60 * cfg.minutes
            and epoch + 1 < cfg.epochs
        ):
            stopped = True
            break
    report = TrainReport(
        str(out_path),
        sha,
        len(history),
        best_epoch,
        round(time.monotonic() - t0, 1),
        tuple(history),
        stopped,
    )
    log_doc = {
        "config": asdict(cfg),
        "report": {k: v for k, v in asdict(report).items() if k != "history"},
        "history": history,
    }
    atomic_write_text(
        out_path.with_suffix(".json"), json.dumps(log_doc, indent=2, sort_keys=True) + "\n"
    )
    return report
