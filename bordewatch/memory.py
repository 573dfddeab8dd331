"""Give freed heap memory back to the operating system between the stages of a tile.

A tile makes many temporary float32 maps. glibc serves those under its adaptive mmap threshold
(up to 32 MB: the ~1 m working-grid maps of a 0.5 m tile) from the heap, and freeing them
leaves holes that stay resident until something asks for them back. ``malloc_trim(0)`` returns
every free page of the heap; it takes milliseconds, so calling it between the big stages keeps a
worker's resident memory near what is live without the cost of mmapping every array.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

__all__ = ["release_free_memory"]


@functools.cache
def _malloc_trim() -> ctypes._NamedFuncPointer | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl has no malloc_trim)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return free heap pages to the OS where the C library can (glibc); True if it did.

    Examples
    --------
    >>> isinstance(release_free_memory(), bool)
    True
    """
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
