"""Faults during a run: SIGKILL at several points then --resume, and a disk that fills up.

The pipeline's stages are the small stand-ins of ``tests/_pipeline_standins.py`` (as in
``test_pipeline.py``): these tests check what the run folder looks like after a fault, not detection.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import _pipeline_standins as standins
import distributed  # noqa: F401  (as in test_pipeline: Dask's config before any stand-in)
import pytest
from click.testing import CliRunner

import bordewatch.report  # noqa: F401  (bind the real stages before stand-ins go in)
from bordewatch.atomic import STAGING_PREFIX, staged_dir
from bordewatch.border import load_border
from bordewatch.errors import DiskFullError
from bordewatch.pipeline import CACHE_DIRNAME, OUTPUT_NAMES, DetectRequest, run_detect

STANDINS = Path(standins.__file__).resolve()
FINAL_FILES = tuple(n for n in OUTPUT_NAMES if n not in (CACHE_DIRNAME, "run.json"))


@pytest.fixture(autouse=True)
def _standins(monkeypatch: pytest.MonkeyPatch) -> None:
    standins.install(monkeypatch)


@pytest.fixture
def scene(tmp_path: Path) -> dict[str, Path]:
    border_path = tmp_path / "line.geojson"
    border_path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": "T"},
                        "geometry": {
                            "type": "LineString",
                            "coordinates": [[129.0, 42.0], [129.06, 42.004]],
                        },
                    }
                ],
            }
        )
    )
    before, after = standins.make_scene(tmp_path, load_border(border_path), rng=5)
    return {"border": border_path, "before": before, "after": after, "root": tmp_path}


def _request(scene: dict[str, Path], out: Path, **kw: object) -> DetectRequest:
    base = DetectRequest(
        before=(scene["before"],),
        after=(scene["after"],),
        out_dir=out,
        border=scene["border"],
        corridor_m=500.0,
        overlap_m=20.0,
        workers=1,
        progress=False,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _outputs(out: Path) -> dict[str, bytes]:
    """The run's final files (run.json aside: it records timings) by name."""
    return {n: (out / n).read_bytes() for n in FINAL_FILES if (out / n).is_file()}


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.rglob("*") if p.name.startswith((".tmp-", STAGING_PREFIX)))


# ---------------------------------------------------------------------------- SIGKILL, resume
def _cached(out: Path) -> int:
    return len(list((out / CACHE_DIRNAME).glob("T-*[0-9a-f].json")))


def _writing(out: Path) -> bool:
    return any((stage / "detections.geojson").exists() for stage in out.glob(STAGING_PREFIX + "*"))


KILL_POINTS: dict[str, Callable[[Path], bool]] = {
    "planned, no tile done": lambda out: (out / CACHE_DIRNAME / "run-key.json").exists(),
    "1 tile done": lambda out: _cached(out) >= 1,
    "2 tiles done": lambda out: _cached(out) >= 2,
    "3 tiles done": lambda out: _cached(out) >= 3,
    "4 of 5 tiles done": lambda out: _cached(out) >= 4,
    "writing the final files": _writing,
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_then_resume_gives_identical_outputs(scene: dict[str, Path], point: str) -> None:
    """Kill the run (SIGKILL) at ``point``; nothing looks finished; --resume matches a clean run."""
    run_detect(_request(scene, scene["root"] / "clean"))
    clean = _outputs(scene["root"] / "clean")
    assert set(clean) >= {"detections.geojson", "bordewatch.gpkg", "report.html"}
    out = scene["root"] / "killed"
    script = textwrap.dedent(
        f"""
        import os, sys, time; sys.path.insert(0, {str(STANDINS.parent)!r})
        import _pipeline_standins as s; s.install()
        import bordewatch.outputs as o
        from pathlib import Path
        from bordewatch.pipeline import DetectRequest, run_detect
        write_gpkg = o.write_gpkg
        def slow_gpkg(*a, **k):  # widen the final-writing window so it can be hit
            time.sleep(float(os.environ["BW_FAULT_WRITE_SLEEP"]))
            return write_gpkg(*a, **k)
        o.write_gpkg = slow_gpkg
        run_detect(DetectRequest(before=(Path({str(scene["before"])!r}),),
            after=(Path({str(scene["after"])!r}),), out_dir=Path({str(out)!r}),
            border=Path({str(scene["border"])!r}), corridor_m=500.0, overlap_m=20.0,
            workers=1, progress=False))
        """
    )
    env = {**os.environ, "BW_TEST_SLEEP": "0.4", "BW_FAULT_WRITE_SLEEP": "3"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 90
        while not KILL_POINTS[point](out):
            assert proc.poll() is None, f"the run ended before it could be killed at {point!r}"
            assert time.monotonic() < deadline, f"{point!r} was not reached in time"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # an interrupted run leaves nothing that looks like a finished output
    assert not [n for n in OUTPUT_NAMES if n != CACHE_DIRNAME and (out / n).exists()]
    summary = run_detect(_request(scene, out, resume=True))
    assert summary.tiles_done == 5
    expected_resumed = {"planned, no tile done": range(0, 2), "writing the final files": [5]}
    assert summary.tiles_resumed in expected_resumed.get(point, range(1, 5))
    assert _outputs(out) == clean
    assert not _leftovers(out), "the staging folder of the killed run was not cleaned up"


# ------------------------------------------------------------------------------ disk full
def _fill_disk_at(monkeypatch: pytest.MonkeyPatch, module: str, func: str) -> None:
    """Make ``module.func`` write half a file, then fail as a full disk does."""
    import importlib

    mod = importlib.import_module(module)
    real = getattr(mod, func)

    def full(*args: object, **kwargs: object) -> None:
        path = next(a for a in (*args, *kwargs.values()) if isinstance(a, Path))
        path.write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    assert callable(real)
    monkeypatch.setattr(mod, func, full)


@pytest.mark.parametrize(
    ("module", "func", "names"),
    [
        ("bordewatch.outputs", "write_geojson", "detections.geojson"),
        ("bordewatch.outputs", "write_gpkg", "bordewatch.gpkg"),
        ("bordewatch.outputs", "write_change_cog", "change.tif"),
    ],
)
def test_disk_full_while_writing_keeps_the_earlier_outputs(
    scene: dict[str, Path], monkeypatch: pytest.MonkeyPatch, module: str, func: str, names: str
) -> None:
    out = scene["root"] / "run"
    run_detect(_request(scene, out))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    _fill_disk_at(monkeypatch, module, func)
    with pytest.raises(DiskFullError, match=rf"{out / names}: the disk is full \(OSError"):
        run_detect(_request(scene, out, overwrite=True, corridor_m=400.0))
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    final = {p: b for p, b in after.items() if CACHE_DIRNAME not in p.parts}
    assert final == {p: b for p, b in before.items() if CACHE_DIRNAME not in p.parts}
    assert not _leftovers(out)


def test_disk_full_in_the_tile_cache_stops_the_run(
    scene: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk is not one tile's failure: the run stops at once with a clear error."""
    from bordewatch.cache import TileCache

    def full(self: TileCache, result: object) -> object:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(TileCache, "store", full)
    out = scene["root"] / "run"
    with pytest.raises(DiskFullError, match=rf"{out / CACHE_DIRNAME}: the disk is full"):
        run_detect(_request(scene, out))
    assert not [n for n in OUTPUT_NAMES if n != CACHE_DIRNAME and (out / n).exists()]


def test_cli_reports_a_full_disk_in_one_line(
    scene: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bordewatch.cli.main import cli

    out = scene["root"] / "cli"
    args = ["-q", "detect", "--before", str(scene["before"]), "--after", str(scene["after"])]
    args += ["--border", str(scene["border"]), "--corridor-m", "500", "--overlap-m", "20"]
    args += ["--workers", "1", "--out", str(out)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    _fill_disk_at(monkeypatch, "bordewatch.outputs", "write_gpkg")
    result = CliRunner().invoke(cli, [*args, "--overwrite"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith(f"Error: {out / 'bordewatch.gpkg'}: the disk is full")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs (needs root and mount rights; skipped elsewhere)."""
    mnt = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_really_full_disk_keeps_the_earlier_outputs(
    scene: dict[str, Path], small_disk: Path
) -> None:
    """Fill a real (tmpfs) disk after a finished run; an --overwrite run fails and keeps it."""
    out = small_disk / "run"
    run_detect(_request(scene, out))
    before = _outputs(out)
    with open(small_disk / "filler", "wb", buffering=0) as fh:  # fill it to the last byte
        with pytest.raises(OSError) as err:
            while True:
                fh.write(b"\0" * 65536)
    assert err.value.errno == errno.ENOSPC
    with pytest.raises(DiskFullError, match="the disk is full"):
        run_detect(_request(scene, out, resume=True, corridor_m=500.0))
    assert _outputs(out) == before
    assert not _leftovers(out)


# ---------------------------------------------------------------------------- staged_dir unit
def test_staged_dir_replaces_the_set_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "stale.txt").write_text("stale")
    (tmp_path / f"{STAGING_PREFIX}killed").mkdir()  # left by a killed run
    with pytest.raises(RuntimeError), staged_dir(tmp_path, replaces=["a.txt"]) as stage:
        (stage / "a.txt").write_text("new a")
        raise RuntimeError("a writer failed")
    assert (tmp_path / "a.txt").read_text() == "old a" and not _leftovers(tmp_path)
    moved: list[str] = []
    real_replace = os.replace

    def spy(src: object, dst: object) -> None:
        moved.append(Path(str(dst)).name)
        real_replace(src, dst)  # type: ignore[arg-type]

    os.replace = spy  # type: ignore[assignment]
    try:
        with staged_dir(tmp_path, replaces=["stale.txt"], last="run.json") as stage:
            (stage / "run.json").write_text("{}")
            (stage / "z.txt").write_text("z")
            (stage / "sub").mkdir()
            (stage / "sub" / "b.txt").write_text("b")
    finally:
        os.replace = real_replace
    assert moved == ["b.txt", "z.txt", "run.json"]  # the completion marker goes last
    assert not (tmp_path / "stale.txt").exists()  # a listed output the new set lacks
    assert (tmp_path / "a.txt").read_text() == "old a"  # not listed: left alone
    assert (tmp_path / "sub" / "b.txt").read_text() == "b" and not _leftovers(tmp_path)
