"""bordewatch.memory: freed heap pages go back to the OS between a tile's stages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bordewatch.memory import _malloc_trim, release_free_memory

glibc = pytest.mark.skipif(_malloc_trim() is None, reason="malloc_trim is glibc's")


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@glibc
def test_holes_in_the_heap_are_returned() -> None:
    # 96 kB arrays stay under glibc's mmap threshold: they live on the heap, and freeing every
    # other one leaves holes that stay resident (the top of the heap is still in use)
    arrays = [np.ones(24_000, np.float32) for _ in range(3000)]
    del arrays[::2]
    before = _rss_kb()
    assert release_free_memory() is True
    assert before - _rss_kb() > 50_000  # ~140 MB of holes; at least 50 MB went back
    assert sum(float(a[0]) for a in arrays) == len(arrays)  # what is live is untouched
