"""Gaussian row passes of a 0.5 m tile's size: scipy.ndimage against bordewatch.detect.gaussian.

Run: ``python benchmarks/gaussian.py`` (CPU seconds, best of 5; one thread).
"""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage

from bordewatch.detect import gaussian


def _best(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def main() -> None:
    x = np.random.default_rng(0).random((4280, 2551), dtype=np.float32)  # a 0.5 m bench tile
    kw = {"mode": "nearest", "truncate": 3.0}
    print(f"array {x.shape[0]} x {x.shape[1]} float32, CPU seconds, best of 5")
    for sigma in (1.0, 2.0):
        ref = _best(
            lambda s=sigma: [
                ndimage.gaussian_filter1d(x, s, axis=0, order=o, **kw) for o in (0, 1, 2)
            ]
        )
        new = _best(
            lambda s=sigma: gaussian.gaussian_filter1d(x, s, axis=0, orders=(0, 1, 2), **kw)
        )
        print(f"rows, orders 0-2, sigma {sigma}: scipy {ref:.3f} s, blocked {new:.3f} s")
    ref = _best(lambda: ndimage.gaussian_filter(x, 1.4, **kw))
    new = _best(lambda: gaussian.gaussian_filter(x, 1.4, **kw))
    print(f"2-D smoothing, sigma 1.4: scipy {ref:.3f} s, blocked rows + scipy columns {new:.3f} s")


if __name__ == "__main__":
    main()
