"""Approximate F1 of the classical detector on bordewatch.synth scenes (not a test; a script).

Usage: .venv/bin/python tests/detect/synth_eval.py PRESET GSD SEED [SEED ...]
The pair is co-registered and normalised first, as ``bordewatch detect`` does.
Matching: lines length-based within a 5 m buffer, towers one-to-one within 5 m; ``new`` only;
truth with ``observable=False`` is ignored (predictions near it are not penalised).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import make_tile

from bordewatch import align
from bordewatch.detect import detect_tile
from bordewatch.imagery import TilePair
from bordewatch.results import DetectConfig
from bordewatch.synth import render_pair

ALIGN = True
"""Co-register and normalise the pair first, as the pipeline does."""


def evaluate(preset: str, gsd: float, seed: int, size: int = 512) -> dict[str, tuple[float, float]]:
    sp = render_pair(size_px=(size, size), gsd_m=gsd, preset=preset, rng=seed)
    pair = TilePair(make_tile(sp.valid.shape, gsd), sp.before, sp.after, sp.valid, sp.bands)
    pair = (
        align.normalise(align.coregister(pair)) if ALIGN else pair
    )  # as the pipeline does before detection
    t0 = time.process_time()
    out = detect_tile(pair, DetectConfig())
    cpu = time.process_time() - t0
    inv = ~pair.tile.affine

    def px(g):
        return shapely.transform(g, lambda xy: np.column_stack(inv @ (xy[:, 0], xy[:, 1])) - 0.5)

    res: dict[str, tuple[float, float]] = {"cpu_s": (cpu, sp.valid.size / cpu / 1e6)}
    tol = 5.0 / gsd
    for cls in ("fence", "patrol_lane", "watchtower"):
        truth = [
            t.geometry for t in sp.truth if t.cls == cls and t.status == "new" and t.observable
        ]
        hidden = [t.geometry for t in sp.truth if t.cls == cls and not t.observable]
        other = [
            t.geometry for t in sp.truth if t.cls == cls and t.status != "new" and t.observable
        ]
        pred = [px(d.geometry) for d in out.detections if d.cls == cls and d.status == "new"]
        ign = shapely.union_all(hidden).buffer(tol) if hidden else shapely.Point(-1e9, -1e9)
        if cls == "watchtower":
            pred = [p for p in pred if not ign.contains(p)]
            used, tp = set(), 0
            for t in truth:
                dists = [(t.distance(p), i) for i, p in enumerate(pred) if i not in used]
                if dists and min(dists)[0] <= tol:
                    used.add(min(dists)[1])
                    tp += 1
            prec = tp / len(pred) if pred else float(not truth)
            rec = tp / len(truth) if truth else float(not pred)
            res[cls] = (prec, rec, len(truth), len(pred), len([o for o in other]))
        else:
            tu = shapely.union_all(truth) if truth else shapely.LineString()
            pu = shapely.union_all(pred).difference(ign) if pred else shapely.LineString()
            plen = pu.length
            prec = pu.intersection(tu.buffer(tol)).length / plen if plen else float(tu.length == 0)
            rec = (
                tu.intersection(pu.buffer(tol)).length / tu.length
                if tu.length
                else float(plen == 0)
            )
            res[cls] = (prec, rec, tu.length * gsd, plen * gsd)
    return res


def main() -> None:
    preset, gsd = sys.argv[1], float(sys.argv[2])
    for seed in sys.argv[3:]:
        r = evaluate(preset, gsd, int(seed))
        parts = [f"{preset} gsd={gsd} seed={seed} Mpx/s(cpu)={r.pop('cpu_s')[1]:.2f}"]
        for cls, v in r.items():
            p, rc = v[0], v[1]
            f1 = 2 * p * rc / (p + rc) if p + rc else 0.0
            parts.append(f"{cls}: P={p:.2f} R={rc:.2f} F1={f1:.2f} n={v[2:]}")
        print(" | ".join(parts), flush=True)


if __name__ == "__main__":
    main()
