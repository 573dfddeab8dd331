"""Atomic file writes: write to a temporary name beside the target, then rename into place.

An interrupted run therefore never leaves a half-written file under a final name, and
:func:`staged_dir` extends that to a whole set of outputs: they are written into a hidden staging
folder and moved into place together, so a failure (a full disk, say) leaves the earlier set intact.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from bordewatch.errors import BordewatchError, DiskFullError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "staged_dir"]

#: Below this much free space a failed write is reported as a full disk: writers such as GDAL
#: and SQLite often surface ENOSPC as their own errors ("no such table", "write failed").
LOW_SPACE_BYTES = 32 * 2**20

STAGING_PREFIX = ".staging-"


def _free_bytes(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        with contextlib.suppress(OSError):
            return shutil.disk_usage(candidate).free
    return None


def _disk_full(err: BaseException, free: int | None) -> bool:
    if isinstance(err, DiskFullError):
        return True
    if isinstance(err, BordewatchError) or not isinstance(err, Exception):
        return False
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return free is not None and free < LOW_SPACE_BYTES


def disk_full_error(target: Path, err: BaseException) -> DiskFullError | None:
    """A :class:`DiskFullError` naming ``target`` if ``err`` looks like a full disk, else None."""
    free = _free_bytes(Path(target))
    if not _disk_full(err, free):
        return None
    cause = err.__cause__ if isinstance(err, DiskFullError) and err.__cause__ else err
    left = "" if free is None else f", {free / 2**20:.1f} MiB free"
    return DiskFullError(
        f"{target}: the disk is full ({type(cause).__name__}{left}); nothing was replaced; "
        "free some space and run again (with --resume to keep finished tiles)",
        path=target,
    )


def raise_if_disk_full(target: Path, err: BaseException) -> None:
    """Raise :func:`disk_full_error`'s error (from the original cause) if ``err`` is a full disk."""
    full = disk_full_error(target, err)
    if full is not None:
        raise full from (err.__cause__ if isinstance(err, DiskFullError) else err)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block succeeds.

    The temporary name keeps the target's suffix (GDAL and pyogrio pick drivers by suffix) and
    starts with ``.tmp-`` so it is never mistaken for a finished output. On error it is removed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "a.txt").read_text()
    'hello'
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".tmp-{target.stem}-", suffix=target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # writers (GDAL, pyogrio) want to create the file themselves
    try:
        yield tmp
        if tmp.is_dir():
            raise IsADirectoryError(tmp)
        os.replace(tmp, target)
    except Exception as err:
        raise_if_disk_full(target, err)  # the outermost atomic_path names the file
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (fsync'd before the rename)."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``target`` atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))


@contextlib.contextmanager
def staged_dir(
    target_dir: str | os.PathLike[str], *, replaces: Iterable[str] = (), last: str | None = None
) -> Iterator[Path]:
    """Yield a hidden staging folder in ``target_dir``; move its contents into place on success.

    Everything written under the staging folder replaces the file of the same relative path in
    ``target_dir`` (one ``os.replace`` per file, ``last`` moved last so that it marks a complete
    set). Names in ``replaces`` that the staged set lacks are removed from ``target_dir`` as stale.
    If the block fails, the staging folder is deleted and ``target_dir`` is left as it was; a
    failure that looks like a full disk becomes one :class:`~bordewatch.errors.OutputError`.
    Staging folders left by a killed process are removed on the next call.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with staged_dir(d, last="b.txt") as stage:
    ...     _ = (stage / "a.txt").write_text("a")
    ...     _ = (stage / "b.txt").write_text("b")
    >>> sorted(p.name for p in d.iterdir())
    ['a.txt', 'b.txt']
    """
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob(STAGING_PREFIX + "*"):
        shutil.rmtree(old, ignore_errors=True)  # from a run that was killed while writing
    stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=target))
    try:
        yield stage
    except BaseException as err:
        where = target
        if isinstance(err, DiskFullError) and isinstance(err.path, Path):
            with contextlib.suppress(ValueError):  # name the output, not its staged copy
                where = target / err.path.relative_to(stage).parts[0]
        try:
            raise_if_disk_full(where, err)  # measured before the staged files are freed
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        raise
    try:
        files = sorted(p for p in stage.rglob("*") if p.is_file())
        files.sort(key=lambda p: p.relative_to(stage).as_posix() == last)
        staged_names = {p.relative_to(stage).parts[0] for p in files}
        for name in replaces:
            stale = target / name
            if name not in staged_names and name != last and stale.is_file():
                stale.unlink()
        for path in files:
            dest = target / path.relative_to(stage)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
