"""Learned change detector: a compact Siamese encoder–decoder over before/after RGB.

The network (:class:`ChangeNet`) sees the co-registered before and after tiles (first three bands,
each epoch standardised with its own local statistics by :func:`normalise_pair`, in training as at
inference), runs one shared-weight encoder on both, and decodes the signed feature difference
(plus the *after* features at the coarsest level, so it knows what appeared) into per-pixel
classes :data:`CLASSES`: background, new fence, new patrol lane, new watchtower, existing
infrastructure. To keep it fast on CPU the encoder works at 1/2–1/8
resolution and the decoder returns to full resolution with a 2×2 transposed conv. A cheap
full-resolution branch (a linear 3×3 conv of the signed difference *after − before*,
:data:`FULL_WIDTH` channels, fused with the pixel-shuffled 1/2-resolution decoder output) adds a
per-pixel correction to the logits, so 1-px fences and 2-px towers are localised at their scale.
Version-1 weights (no full-resolution branch, ``full_width=0``) still load.

Inference runs in overlapping patches (:func:`predict_proba`); :func:`detect_model` turns the
probabilities into detections with the shared vectoriser and is registered as method ``"model"``.
torch is imported lazily: importing this module does not import torch.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from bordewatch.detect import register_method
from bordewatch.errors import ModelError
from bordewatch.imagery import TilePair
from bordewatch.results import DetectConfig, Detection, DetectorOutput

if TYPE_CHECKING:
    import torch

__all__ = [
    "CLASSES",
    "DEFAULT_MODEL_PATH",
    "NEW_CLASSES",
    "any_change",
    "build_model",
    "detect_model",
    "detections_from_proba",
    "load_model",
    "normalise_epoch",
    "normalise_pair",
    "predict_proba",
    "predict_tile",
    "save_model",
]

CLASSES: tuple[str, ...] = ("background", "fence", "patrol_lane", "watchtower", "existing")
"""Output classes, in channel order. ``fence``/``patrol_lane``/``watchtower`` mean *new* ones."""
NEW_CLASSES: tuple[int, ...] = (1, 2, 3)
WIDTHS: tuple[int, int, int] = (24, 32, 48)
FULL_WIDTH = 6
"""Channels of the full-resolution branch (0: the version-1 network without it)."""
FULL_DEC_WIDTH = 8
"""Channels of the full-resolution fusion layer."""
IN_BANDS = 3
MIN_GSD_M = 0.5
"""Imagery finer than this is resampled to it before inference (the model saw 0.5–2 m)."""
MIN_TOWER_M = 2.0
"""Side of the smallest tower roof (2-8 m): tower-class blobs smaller than its square are
dropped. With (1 m)^2, a hard tuning tile (seed 41, 0.5 m) gave 105 new towers per km for 4
true ones: specks of tower probability in texture."""
NORM_SIGMA_PX = 192.0
"""Gaussian sigma (pixels at the model's grid) of :func:`normalise_pair`'s local statistics."""
NORM_BLOCK_PX = 32
"""Block size (pixels) on which :func:`normalise_pair` computes its local statistics."""
NORM_STRIDE_PX = 4
"""Sampling step (pixels) of the local statistics (they are smooth over ``NORM_SIGMA_PX``)."""
NORM_FLOOR = 0.01
"""Floor (reflectance) added in quadrature to the local standard deviation."""
DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[2] / "models" / "bordewatch_siam.pt"
_REGEN = "regenerate it with `make train` (or `bordewatch train --out models/`)"


def _module_class() -> type:
    """Build the torch module class on first use (keeps torch out of the import path)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    def cbr(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )

    class ChangeNet(nn.Module):
        """Siamese encoder (shared weights) + difference decoder; see the module docstring."""

        def __init__(
            self,
            n_classes: int = len(CLASSES),
            widths: tuple[int, ...] = WIDTHS,
            full_width: int = FULL_WIDTH,
        ):
            super().__init__()
            w0, w1, w2 = widths
            self.n_classes = n_classes
            self.full_width = full_width
            self.enc1 = nn.Sequential(
                nn.Conv2d(IN_BANDS, w0, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(w0),
                nn.ReLU(inplace=True),
            )
            self.enc2 = nn.Sequential(cbr(w0, w1, 2), cbr(w1, w1))
            self.enc3 = nn.Sequential(cbr(w1, w2, 2), cbr(w2, w2))
            self.dec3 = cbr(2 * w2, w1)
            self.dec2 = cbr(2 * w1, w0)
            self.dec1 = cbr(2 * w0, w0)
            self.head = nn.ConvTranspose2d(w0, n_classes, 2, stride=2)
            if full_width:
                # full-resolution path: a linear 3x3 conv of the signed input difference (the
                # difference of a linear per-epoch feature, at half the cost), fused with the
                # pixel-shuffled 1/2-resolution decoder output, adds a per-pixel correction to the
                # logits (zero at initialisation, so training starts from the coarse network)
                self.enc0 = nn.Conv2d(IN_BANDS, full_width, 3, padding=1, bias=False)
                self.shuffle = nn.PixelShuffle(2)
                self.dec0 = cbr(w0 // 4 + full_width, FULL_DEC_WIDTH)
                self.head0 = nn.Conv2d(FULL_DEC_WIDTH, n_classes, 1)
                nn.init.zeros_(self.head0.weight)
                nn.init.zeros_(self.head0.bias)

        def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            f1 = self.enc1(x)
            f2 = self.enc2(f1)
            return f1, f2, self.enc3(f2)

        def forward(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
            """Logits ``(batch, n_classes, row, col)``; row and col must be multiples of 8."""
            b1, b2, b3 = self.encode(before)
            a1, a2, a3 = self.encode(after)
            x = self.dec3(torch.cat((a3 - b3, a3), 1))
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = self.dec2(torch.cat((x, a2 - b2), 1))
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = self.dec1(torch.cat((x, a1 - b1), 1))
            logits = self.head(x)
            if not self.full_width:
                return logits
            d0 = self.enc0(after - before)
            return logits + self.head0(self.dec0(torch.cat((self.shuffle(x), d0), 1)))

    return ChangeNet


@functools.cache
def _changenet() -> type:
    return _module_class()


def build_model(*, rng: int = 0, full_width: int = FULL_WIDTH) -> torch.nn.Module:
    """A freshly initialised :class:`ChangeNet` (weights drawn from ``torch.manual_seed(rng)``).

    ``full_width=0`` builds the version-1 network without the full-resolution branch.
    """
    import torch

    torch.manual_seed(rng)
    return _changenet()(full_width=full_width)


def save_model(model: torch.nn.Module, path: str | Path) -> str:
    """Write the model's ``state_dict`` atomically to ``path``; return the file's sha256."""
    import io

    import torch

    from bordewatch.atomic import atomic_write_bytes

    buf = io.BytesIO()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, buf)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def _fuse(model: torch.nn.Module) -> torch.nn.Module:
    """Fold every BatchNorm into the convolution before it (eval-mode inference only)."""
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in model.modules():
        if isinstance(module, nn.Sequential) and len(module) == 3:
            conv, bn = module[0], module[1]
            if type(conv) is nn.Conv2d and isinstance(bn, nn.BatchNorm2d):
                module[0] = fuse_conv_bn_eval(conv, bn)
                module[1] = nn.Identity()
    return model


def load_model(path: str | Path | None = None, *, device: str = "cpu") -> torch.nn.Module:
    """Load weights saved by :func:`save_model` into an eval-mode, BN-fused :class:`ChangeNet`.

    Only ``torch.load(..., weights_only=True)`` is used, so a weight file cannot run code.

    Raises
    ------
    ModelError
        The file is missing, unreadable, corrupt or does not fit the network.
    """
    file = Path(path) if path is not None else DEFAULT_MODEL_PATH
    try:
        st = file.stat()
        stamp = (st.st_mtime_ns, st.st_size)  # a rewritten file is loaded afresh
    except OSError:
        stamp = (0, 0)
    return _load_cached(str(file), device, stamp)


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, device: str, stamp: tuple[int, int]) -> torch.nn.Module:
    import torch

    if not Path(path).is_file():
        raise ModelError(f"model weights not found: {path}; {_REGEN}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise ModelError(f"cannot read model weights {path} ({err}); {_REGEN}") from err
    if not isinstance(state, dict):
        raise ModelError(f"model weights {path} hold no state_dict; {_REGEN}")
    full = state.get("enc0.weight")
    model = _changenet()(full_width=int(full.shape[0]) if isinstance(full, torch.Tensor) else 0)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as err:
        first = str(err).splitlines()[0]
        raise ModelError(
            f"model weights {path} do not fit the network ({first}); {_REGEN}"
        ) from err
    model = _fuse(model.eval())
    try:
        model = model.to(device=torch.device(device), memory_format=torch.channels_last)
    except (RuntimeError, AssertionError) as err:
        raise ModelError(f"cannot use torch device {device!r} for {path}: {err}") from err
    return model


def normalise_epoch(
    image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float32]:
    """First three bands standardised per band over valid pixels, clipped to ±5, 0 where invalid.

    Parameters
    ----------
    image : ndarray of float32, shape (band, row, col)
        At least three bands; the first three are used (RGB by the TilePair convention).
    valid : ndarray of bool, shape (row, col)
    """
    if image.ndim != 3 or image.shape[0] < IN_BANDS:
        raise ValueError(f"need (band>=3, row, col) imagery, got shape {image.shape}")
    rgb = np.asarray(image[:IN_BANDS], dtype=np.float32)
    step = max(1, int(np.sqrt(valid.size / 65536)))
    sample = rgb[:, ::step, ::step][:, valid[::step, ::step]]
    if sample.shape[1] < 16:
        sample = rgb[:, valid]
    out = np.zeros_like(rgb)
    if sample.shape[1] == 0:
        return out
    mean = sample.mean(axis=1, dtype=np.float64).astype(np.float32)
    std = np.maximum(sample.std(axis=1, dtype=np.float64).astype(np.float32), 1e-3)
    for b in range(IN_BANDS):
        np.subtract(rgb[b], mean[b], out=out[b])
        out[b] /= std[b]
    np.clip(out, -5.0, 5.0, out=out)
    out[:, ~valid] = 0.0
    return out


def normalise_pair(
    before: npt.NDArray[np.float32],
    after: npt.NDArray[np.float32],
    valid: npt.NDArray[np.bool_],
    *,
    sigma_px: float = NORM_SIGMA_PX,
    block_px: int = NORM_BLOCK_PX,
    floor: float = NORM_FLOOR,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The network's input: each epoch standardised with its own *local* statistics.

    Per epoch and band, the mean and standard deviation are taken over valid pixels with a
    Gaussian window of ``sigma_px`` pixels (computed from every :data:`NORM_STRIDE_PX`-th pixel on
    ``block_px`` blocks anchored at the tile's top-left corner and interpolated bilinearly), so a
    pixel's input depends only on its surroundings within ``3 * sigma_px`` pixels, not on how
    large the tile is: far-away clouds, snow, water or haze no longer change what the network sees
    at a fence (the former tile-wide :func:`normalise_epoch` did; training used 192–768 m scenes,
    about one ``sigma_px`` window at 0.5 m). The same function prepares the training scenes
    (:func:`bordewatch.train.synth_scene`). Per-epoch statistics equalise local contrast between
    a hazy and a clear epoch. ``floor`` is added in quadrature to the standard deviation so
    uniform ground (calm water, snow) is not amplified into noise. Values are clipped to ±5;
    invalid pixels (clouds, nodata) are 0 and do not count.

    Parameters
    ----------
    before, after : ndarray of float32, shape (band, row, col)
        At least three bands; the first three are used (RGB by the TilePair convention).
    valid : ndarray of bool, shape (row, col)

    Returns
    -------
    (before, after) : ndarrays of float32, shape (3, row, col)
    """
    import torch
    from scipy import ndimage
    from torch.nn import functional as F

    for img in (before, after):
        if img.ndim != 3 or img.shape[0] < IN_BANDS or img.shape[1:] != valid.shape:
            raise ValueError(
                f"need (band>=3, row, col) imagery matching valid {valid.shape}, got {img.shape}"
            )
    rows, cols = valid.shape
    b = torch.from_numpy(np.ascontiguousarray(before[:IN_BANDS], dtype=np.float32))
    a = torch.from_numpy(np.ascontiguousarray(after[:IN_BANDS], dtype=np.float32))
    w = torch.from_numpy(np.ascontiguousarray(valid, dtype=np.float32))[None]
    # per-block means of the weight, the values and their squares of each epoch, from every
    # NORM_STRIDE_PX-th pixel (blocks and samples anchored at the tile's top-left corner)
    st = NORM_STRIDE_PX
    bs, as_, ws = b[:, ::st, ::st], a[:, ::st, ::st], w[:, ::st, ::st]
    parts = torch.cat((ws, bs * ws, bs * bs * ws, as_ * ws, as_ * as_ * ws))[None]
    cells = block_px // st
    parts = F.pad(parts, (0, -parts.shape[-1] % cells, 0, -parts.shape[-2] % cells))
    sums = F.avg_pool2d(parts, cells)[0].double().numpy()
    sums = ndimage.gaussian_filter(
        sums, (0, sigma_px / block_px, sigma_px / block_px), mode="constant", truncate=3.0
    )
    weight = np.where(sums[0] > 1e-6, sums[0], np.inf)
    grids = []
    for e in range(2):  # before, after: mean and 1/std per band
        first = 1 + 2 * IN_BANDS * e
        mean = sums[first : first + IN_BANDS] / weight
        var = np.maximum(sums[first + IN_BANDS : first + 2 * IN_BANDS] / weight - mean**2, 0.0)
        grids += [mean, 1.0 / np.sqrt(var + floor * floor)]
    # bilinear (block centres) back to pixels
    grid = torch.from_numpy(np.concatenate(grids).astype(np.float32))[None]
    size = (sums.shape[1] * block_px, sums.shape[2] * block_px)
    up = F.interpolate(grid, size=size, mode="bilinear", align_corners=False)[0, :, :rows, :cols]
    mask = ~torch.from_numpy(np.ascontiguousarray(valid, dtype=bool))
    out = []
    for e, x in enumerate((b, a)):
        mean_px = up[2 * IN_BANDS * e : 2 * IN_BANDS * e + IN_BANDS]
        inv_px = up[2 * IN_BANDS * e + IN_BANDS : 2 * IN_BANDS * (e + 1)]
        z = ((x - mean_px) * inv_px).clamp_(-5.0, 5.0)
        z.masked_fill_(mask, 0.0)
        out.append(np.ascontiguousarray(z.numpy()))
    return out[0], out[1]


def _patch_starts(n: int, patch: int, overlap: int) -> list[int]:
    if n <= patch:
        return [0]
    step = patch - 2 * overlap
    starts = list(range(0, n - patch, step))
    return [*starts, n - patch]


def _patch_size(n: int, patch: int, overlap: int) -> int:
    """The smallest multiple of 8 (≤ ``patch`` unless ``n`` fits) that needs as few patches.

    Spreading the same number of patches evenly over the tile instead of letting the last one
    overlap its neighbour almost completely saves up to half the network's work on tile sizes
    just above a multiple of ``patch``.
    """
    if n <= patch:
        return n
    inner = patch - 2 * overlap
    count = -(-(n - 2 * overlap) // inner)
    size = -(-(n - 2 * overlap) // count) + 2 * overlap
    return min(n, patch, 8 * -(-size // 8))


def predict_proba(
    before: npt.NDArray[np.float32],
    after: npt.NDArray[np.float32],
    valid: npt.NDArray[np.bool_],
    model: torch.nn.Module,
    *,
    patch_px: int = 512,
    overlap_px: int = 16,
) -> npt.NDArray[np.float32]:
    """Class probabilities ``(len(CLASSES), row, col)`` float32 for one co-registered pair.

    Inputs are ``(band, row, col)`` float32 0–1 (≥ 3 bands, RGB first). The tile is processed in
    ``patch_px`` squares overlapping by ``2 * overlap_px``; each patch contributes only its centre
    (its outer ``overlap_px`` are dropped where a neighbour covers them). Invalid pixels get
    probability 1 for background.
    """
    import torch

    rows, cols = valid.shape
    xb, xa = normalise_pair(before, after, valid)
    pr, pc = -rows % 8, -cols % 8
    if pr or pc:  # pad to a multiple of 8 (the network's stride)
        xb = np.pad(
            xb, ((0, 0), (0, pr), (0, pc)), mode="reflect" if min(rows, cols) > 8 else "edge"
        )
        xa = np.pad(
            xa, ((0, 0), (0, pr), (0, pc)), mode="reflect" if min(rows, cols) > 8 else "edge"
        )
    R, C = xb.shape[1:]
    ph, pw = _patch_size(R, patch_px, overlap_px), _patch_size(C, patch_px, overlap_px)
    out = np.empty((len(CLASSES), R, C), dtype=np.float32)
    device = next(model.parameters()).device
    with torch.inference_mode():
        for r0 in _patch_starts(R, ph, overlap_px):
            for c0 in _patch_starts(C, pw, overlap_px):
                tb = torch.from_numpy(np.ascontiguousarray(xb[None, :, r0 : r0 + ph, c0 : c0 + pw]))
                ta = torch.from_numpy(np.ascontiguousarray(xa[None, :, r0 : r0 + ph, c0 : c0 + pw]))
                tb = tb.to(device).contiguous(memory_format=torch.channels_last)
                ta = ta.to(device).contiguous(memory_format=torch.channels_last)
                logits = model(tb, ta).contiguous()  # softmax is slow on channels_last
                prob = torch.softmax(logits, dim=1)[0].float().cpu().numpy()
                rs = 0 if r0 == 0 else overlap_px
                cs = 0 if c0 == 0 else overlap_px
                out[:, r0 + rs : r0 + ph, c0 + cs : c0 + pw] = prob[:, rs:, cs:]
    out = out[:, :rows, :cols]
    out[:, ~valid] = 0.0
    out[0, ~valid] = 1.0
    return np.ascontiguousarray(out)


def any_change(proba: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Probability that a pixel holds *new* infrastructure (sum of the new classes), 0–1."""
    return np.clip(proba[list(NEW_CLASSES)].sum(axis=0), 0.0, 1.0).astype(np.float32)


def _resample(
    arr: npt.NDArray[np.float32], shape: tuple[int, int], mode: str
) -> npt.NDArray[np.float32]:
    import torch
    from torch.nn import functional as F

    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None]
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(t, size=shape, mode=mode, **kw)[0].numpy()


def predict_tile(pair: TilePair, model: torch.nn.Module) -> npt.NDArray[np.float32]:
    """Class probabilities ``(len(CLASSES), row, col)`` on the tile grid of ``pair``.

    Imagery finer than :data:`MIN_GSD_M` is averaged down to it first (area resampling) and the
    probabilities are interpolated back, since the network was trained at 0.5–2 m.
    """
    rows, cols = pair.valid.shape
    factor = pair.gsd_m / MIN_GSD_M
    if factor >= 0.9:
        return predict_proba(pair.before, pair.after, pair.valid, model)
    shape = (max(8, round(rows * factor)), max(8, round(cols * factor)))
    before = _resample(pair.before[:IN_BANDS], shape, "area")
    after = _resample(pair.after[:IN_BANDS], shape, "area")
    valid = _resample(pair.valid[None].astype(np.float32), shape, "area")[0] > 0.5
    proba = _resample(predict_proba(before, after, valid, model), (rows, cols), "bilinear")
    proba[:, ~pair.valid] = 0.0
    proba[0, ~pair.valid] = 1.0
    return proba


def _line_detections(
    prob: npt.NDArray[np.float32],
    mask: npt.NDArray[np.bool_],
    cls: str,
    pair: TilePair,
    min_len_m: float,
) -> list[Detection]:
    from bordewatch.vectorize import mask_to_polylines, sample_along, to_tile_crs

    gsd = pair.gsd_m
    lines = mask_to_polylines(
        mask,
        min_length_px=min_len_m / gsd,
        simplify_px=1.0,
        max_gap_px=10.0 / gsd,
        min_piece_px=3.0,
    )
    out = []
    for line in lines:
        _, values = sample_along(line, prob, step_px=1.0)
        geom = to_tile_crs(line, pair.tile.affine)
        out.append(Detection(cls, "new", round(float(np.clip(values.mean(), 0, 1)), 4), geom))
    return out


def _tower_detections(
    prob: npt.NDArray[np.float32], mask: npt.NDArray[np.bool_], pair: TilePair
) -> list[Detection]:
    from scipy import ndimage

    from bordewatch.vectorize import blob_centroids, to_tile_crs

    min_area_px = max(2.0, (MIN_TOWER_M / pair.gsd_m) ** 2)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        return []
    idx = np.arange(1, n + 1)
    area = ndimage.sum(mask, labels, idx)
    peak = ndimage.maximum(prob, labels, idx)
    keep = np.isin(labels, idx[area >= min_area_px])
    points = blob_centroids(keep, prob)
    peaks = [float(p) for p, a in zip(peak, area) if a >= min_area_px]
    return [
        Detection(
            "watchtower", "new", round(float(np.clip(s, 0, 1)), 4), to_tile_crs(p, pair.tile.affine)
        )
        for p, s in zip(points, peaks)
    ]


def detections_from_proba(
    proba: npt.NDArray[np.float32], pair: TilePair, *, min_fence_length_m: float = 30.0
) -> tuple[Detection, ...]:
    """Vectorise the network's per-pixel classes into *new* fences, lanes and towers (tile CRS)."""
    label = proba.argmax(axis=0)
    label[~pair.valid] = 0
    dets = _line_detections(proba[1], label == 1, "fence", pair, min_fence_length_m)
    dets += _line_detections(proba[2], label == 2, "patrol_lane", pair, min_fence_length_m)
    dets += _tower_detections(proba[3], label == 3, pair)
    return tuple(dets)


def detect_model(pair: TilePair, config: DetectConfig) -> DetectorOutput:
    """Method ``"model"``: the learned detector on one tile (new objects only).

    ``change`` is the probability of new infrastructure (0–1, NaN where not both epochs valid).
    """
    model = load_model(config.model_path, device=config.device)
    proba = predict_tile(pair, model)
    dets = detections_from_proba(proba, pair, min_fence_length_m=config.min_fence_length_m)
    change = any_change(proba)
    change[~pair.valid] = np.nan
    return DetectorOutput(detections=dets, change=change)


register_method("model", detect_model)
