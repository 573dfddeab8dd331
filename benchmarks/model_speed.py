"""The network's inference speed as the model card states it: Mpx per CPU-second, one thread.

``predict_proba`` end to end (local normalisation, patches, softmax) on a 2048 x 2048 random
pair, CPU time (``time.process_time``; wall time on a shared 2-core machine varies more), best
of 3 repeats, reported ``--rounds`` times a few seconds apart so the machine's drift shows.

Run: ``python benchmarks/model_speed.py`` (needs the shipped weights, ``models/``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--size", type=int, default=2048)
    args = parser.parse_args()

    import torch

    from bordewatch.detect import model

    torch.set_num_threads(1)
    net = model.load_model()
    rng = np.random.default_rng(0)
    n = args.size
    before = rng.random((3, n, n), dtype=np.float32)
    after = rng.random((3, n, n), dtype=np.float32)
    valid = np.ones((n, n), bool)
    for k in range(args.rounds):
        times = []
        for _ in range(3):
            t = time.process_time()
            model.predict_proba(before, after, valid, net)
            times.append(time.process_time() - t)
        print(f"round {k + 1}: {n * n / 1e6 / min(times):.2f} Mpx per CPU-second (best of 3)")
        if k + 1 < args.rounds:
            time.sleep(10)


if __name__ == "__main__":
    main()
