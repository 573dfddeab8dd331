"""What the classical detector says on real LEVIR-CD building-change crops (a script, not a test).

Usage: .venv/bin/python tests/detect/levir_check.py
Prints per crop: changed-building fraction, new fence metres, new lane metres, new towers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from skimage.io import imread

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import make_tile

from bordewatch.detect import detect_tile
from bordewatch.imagery import TilePair
from bordewatch.results import DetectConfig

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "levir_cd"


def main() -> None:
    tot = {"fence": 0.0, "patrol_lane": 0.0, "watchtower": 0.0, "existing": 0}
    for a_path in sorted((DATA / "A").glob("*.png")):
        a = imread(a_path)[..., :3].astype(np.float32).transpose(2, 0, 1) / 255
        b = imread(DATA / "B" / a_path.name)[..., :3].astype(np.float32).transpose(2, 0, 1) / 255
        lab = imread(DATA / "label" / a_path.name) > 0
        pair = TilePair(
            make_tile(a.shape[1:], 0.5), a, b, np.ones(a.shape[1:], bool), ("red", "green", "blue")
        )
        out = detect_tile(pair, DetectConfig())
        new = [d for d in out.detections if d.status == "new"]
        fm = sum(d.geometry.length for d in new if d.cls == "fence")
        lm = sum(d.geometry.length for d in new if d.cls == "patrol_lane")
        nt = sum(d.cls == "watchtower" for d in new)
        ex = sum(d.status == "existing" for d in out.detections)
        tot["fence"] += fm
        tot["patrol_lane"] += lm
        tot["watchtower"] += nt
        tot["existing"] += ex
        print(
            f"{a_path.stem:24s} change={lab.mean():.3f} new_fence_m={fm:6.1f} new_lane_m={lm:6.1f} new_towers={nt} existing={ex}"
        )
    print("total over 11 crops (each 128 m x 128 m):", {k: round(v, 1) for k, v in tot.items()})


if __name__ == "__main__":
    main()
