"""Generic change sensitivity on real data: pixel F1 of the model and a classical change score.

Datasets (``../shared/data`` beside the repository; absent -> the script says so and exits 0):

- LEVIR-CD crops (``levir_cd/{A,B,label}/*.png``, 0.5 m RGB, building change, label 0/255);
- OSCD Rennes (``oscd/rennes``, Sentinel-2 B04/B03/B02 at 10 m, ``cm`` 1 = no change, 2 = change).

Scores, pooled over all pixels of a dataset:

- ``classical``: Otsu threshold of the band-mean absolute difference of the per-epoch
  standardised RGB (a simple normalised abs difference);
- ``model``: the learned detector's any-new-infrastructure probability ≥ 0.5 (and, for reference,
  Otsu on that probability). The model was trained only on synthetic fences/lanes/towers, so this is
  a sanity check of generic change sensitivity, not a target.

Usage: ``.venv/bin/python benchmarks/real_change.py [--model models/bordewatch_siam.pt]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
PUBLISHED = "LEVIR-CD test set (supervised): FC-Siam-diff F1 0.863, BIT 0.893"

Pair = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.bool_]]


def load_levir(root: Path = SHARED / "levir_cd") -> list[Pair]:
    """``(before, after, label)`` per LEVIR-CD crop: float32 (3, row, col) 0–1 and bool labels."""
    from PIL import Image

    out = []
    for a_path in sorted((root / "A").glob("*.png")):
        a = np.asarray(Image.open(a_path).convert("RGB"), np.float32) / 255.0
        b = np.asarray(Image.open(root / "B" / a_path.name).convert("RGB"), np.float32) / 255.0
        lab = np.asarray(Image.open(root / "label" / a_path.name)) > 127
        out.append((a.transpose(2, 0, 1).copy(), b.transpose(2, 0, 1).copy(), lab))
    return out


def load_oscd(root: Path = SHARED / "oscd" / "rennes") -> list[Pair]:
    """OSCD Rennes as one pair of RGB (B04, B03, B02) reflectance-like float32 and its change mask."""
    import rasterio

    def epoch(folder: str) -> npt.NDArray[np.float32]:
        bands = []
        for name in ("B04", "B03", "B02"):
            (path,) = sorted((root / folder).glob(f"*_{name}.tif"))
            with rasterio.open(path) as ds:
                bands.append(ds.read(1).astype(np.float32) / 10000.0)
        return np.stack(bands)

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the change mask has no georeferencing
        with rasterio.open(root / "cm" / "rennes-cm.tif") as ds:
            cm = ds.read(1)
    return [(epoch("imgs_1"), epoch("imgs_2"), cm == 2)]


def classical_score(
    before: npt.NDArray[np.float32], after: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Band-mean absolute difference of the per-epoch standardised RGB."""
    from bordewatch.detect.model import normalise_epoch

    valid = np.ones(before.shape[1:], bool)
    return np.abs(normalise_epoch(after, valid) - normalise_epoch(before, valid)).mean(axis=0)


def otsu_mask(scores: list[npt.NDArray[np.float32]]) -> list[npt.NDArray[np.bool_]]:
    """Threshold each score map at its own Otsu level."""
    from skimage.filters import threshold_otsu

    return [s > threshold_otsu(s) if np.ptp(s) > 0 else np.zeros(s.shape, bool) for s in scores]


def pooled_f1(
    preds: list[npt.NDArray[np.bool_]], labels: list[npt.NDArray[np.bool_]]
) -> tuple[float, float, float]:
    """Precision, recall and F1 over all pixels of all images."""
    tp = sum(int((p & t).sum()) for p, t in zip(preds, labels))
    npred = sum(int(p.sum()) for p in preds)
    ntrue = sum(int(t.sum()) for t in labels)
    prec = tp / npred if npred else 0.0
    rec = tp / ntrue if ntrue else 0.0
    return prec, rec, (2 * prec * rec / (prec + rec) if prec + rec else 0.0)


def model_scores(
    pairs: list[Pair], model_path: str | None
) -> tuple[list[npt.NDArray[np.float32]], float]:
    """Any-new probability per pair, and the throughput in Mpx/s (one thread)."""
    import torch

    from bordewatch.detect.model import any_change, load_model, predict_proba

    torch.set_num_threads(1)
    net = load_model(model_path)
    out, px, t0 = [], 0, time.perf_counter()
    for before, after, _ in pairs:
        valid = np.ones(before.shape[1:], bool)
        out.append(any_change(predict_proba(before, after, valid, net)))
        px += valid.size
    return out, px / (time.perf_counter() - t0) / 1e6


def run(model_path: str | None) -> list[tuple[str, str, float, float, float]]:
    """Rows ``(dataset, method, precision, recall, f1)``."""
    rows = []
    for name, loader in (
        ("LEVIR-CD (11 crops, 0.5 m)", load_levir),
        ("OSCD Rennes (S2, 10 m)", load_oscd),
    ):
        pairs = loader()
        labels = [p[2] for p in pairs]
        rows.append(
            (
                name,
                "classical: Otsu(|z_after - z_before|)",
                *pooled_f1(otsu_mask([classical_score(b, a) for b, a, _ in pairs]), labels),
            )
        )
        probs, mpx = model_scores(pairs, model_path)
        rows.append(
            (name, "model: any-new p >= 0.5", *pooled_f1([p >= 0.5 for p in probs], labels))
        )
        rows.append((name, "model: Otsu(any-new p)", *pooled_f1(otsu_mask(probs), labels)))
        rows.append(
            (
                name,
                f"(model speed {mpx:.2f} Mpx/s, 1 thread)",
                float("nan"),
                float("nan"),
                float("nan"),
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="weight file (default: the shipped one)")
    args = parser.parse_args(argv)
    if not SHARED.is_dir():
        print(f"real data not found at {SHARED}; nothing to do")
        return 0
    print(f"{'dataset':28} {'method':42} {'P':>6} {'R':>6} {'F1':>6}")
    for name, method, p, r, f in run(args.model):
        print(f"{name:28} {method:42} {p:6.3f} {r:6.3f} {f:6.3f}")
    print(f"context, not a target: {PUBLISHED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
