"""A catalogue of bad inputs: each gives a clear one-line error and leaves no finished output.

Every case runs ``bordewatch detect`` (in-process, through click) on tiny seeded rasters around
km 810–811 of the default border and asserts: the exit code (1 for a bad input, 2 for bad
usage), exactly one line on stderr that names the problem, no traceback, and nothing in
``--out`` that looks like a finished output. A few inputs that look odd but are legitimate
(mixed bit depths, NaN nodata) must work.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from click.testing import CliRunner
from rasterio.transform import from_origin

from bordewatch.border import default_border
from bordewatch.cli.main import cli

BORDER = default_border()
KM = (810.0, 811.0)
CRS = BORDER.utm_crs(*KM)
GSD = 4.0
FINISHED = ("detections.geojson", "report.html", "bordewatch.gpkg", "coverage.csv", "run.json")


def _area() -> tuple[float, float, float, float]:
    return BORDER.line_in(CRS, KM).buffer(400.0).bounds


def write_raster(
    path: Path,
    *,
    count: int = 4,
    dtype: str = "uint8",
    shift_m: tuple[float, float] = (0.0, 0.0),
    crs: object = CRS,
    georef: bool = True,
    nodata: float | None = 0,
    fill: float | None = None,
    size: tuple[int, int] | None = None,
    rng: int = 0,
) -> Path:
    """A small textured raster over the corridor of km 810–811 (or shifted away from it)."""
    x0, y0, x1, y1 = _area()
    width = size[1] if size else int((x1 - x0) / GSD)
    height = size[0] if size else int((y1 - y0) / GSD)
    gen = np.random.default_rng(rng)
    top = 255 if dtype == "uint8" else 4095
    data = gen.uniform(0.2, 0.6, (count, height, width)) * top
    if dtype.startswith("float"):
        data = data / top
    if fill is not None:
        data[:] = fill
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": dtype,
        "nodata": nodata,
    }
    if georef:
        profile["crs"] = crs
        profile["transform"] = from_origin(x0 + shift_m[0], y1 + shift_m[1], GSD, GSD)
    with warnings.catch_warnings():  # writing a raster without georeference is the point here
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data.astype(dtype))
    return path


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("good")
    return {
        "before": write_raster(d / "before.tif", rng=1),
        "after": write_raster(d / "after.tif", rng=2),
        "dir": d,
    }


def run_cli(args: list[str]) -> tuple[int, list[str], BaseException | None]:
    result = CliRunner().invoke(cli, ["-q", *args])
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    return result.exit_code, lines, result.exception


def detect_args(before: Path, after: Path, out: Path, *extra: str) -> list[str]:
    km = f"{KM[0]:g}:{KM[1]:g}"
    return [
        "detect", "--before", str(before), "--after", str(after), "--km", km,
        "--corridor-m", "300", "--workers", "1", "--out", str(out), *extra,
    ]  # fmt: skip


def assert_clean_failure(
    code: int, lines: list[str], exc: BaseException | None, out: Path, *, expect: int, words: str
) -> None:
    assert code == expect, lines
    assert isinstance(exc, SystemExit), f"unhandled {exc!r}"  # no traceback
    assert len(lines) == 1 or (expect == 2 and lines[-1].startswith("Error")), lines
    message = lines[-1]
    assert not any("Traceback" in ln for ln in lines)
    for word in words.split("|"):
        if word.lower() in message.lower():
            break
    else:
        pytest.fail(f"{message!r} does not mention any of {words!r}")
    for name in FINISHED:
        assert not (out / name).exists(), f"{name} left in --out"


# ---------------------------------------------------------------- bad rasters
def _truncated(d: Path) -> Path:
    path = write_raster(d / "trunc.tif")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def _not_raster(d: Path) -> Path:
    path = d / "notes.tif"
    path.write_text("this is a text file, not a GeoTIFF\n")
    return path


RASTER_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "truncated GeoTIFF": (_truncated, "trunc.tif"),
    "text file named .tif": (_not_raster, "notes.tif"),
    "no CRS": (lambda d: write_raster(d / "nocrs.tif", crs=None), "nocrs.tif"),
    "no geotransform": (lambda d: write_raster(d / "nogeo.tif", georef=False), "nogeo.tif"),
    "misses the corridor": (
        lambda d: write_raster(d / "far.tif", shift_m=(80_000.0, -60_000.0)),
        "far.tif|corridor|border",
    ),
    "all nodata": (lambda d: write_raster(d / "empty.tif", fill=0), "empty.tif|valid|nodata"),
    "1x1 raster": (lambda d: write_raster(d / "tiny.tif", size=(1, 1)), "tiny.tif|pixel|corridor"),
    "missing file": (lambda d: d / "does_not_exist.tif", "does_not_exist.tif"),
}


@pytest.mark.parametrize("case", list(RASTER_CASES))
def test_bad_before_raster(case: str, good: dict[str, Path], tmp_path: Path) -> None:
    make, words = RASTER_CASES[case]
    bad = make(tmp_path)
    out = tmp_path / "run"
    code, lines, exc = run_cli(detect_args(bad, good["after"], out))
    assert_clean_failure(code, lines, exc, out, expect=1, words=words)


def test_epochs_that_do_not_overlap_each_other(tmp_path: Path) -> None:
    x0, _, x1, _ = _area()
    half = (x1 - x0) / 2 + 50
    before = write_raster(tmp_path / "west.tif", size=(10, 10), rng=1)
    after = write_raster(tmp_path / "east.tif", shift_m=(half, 0.0), size=(10, 10), rng=2)
    out = tmp_path / "run"
    code, lines, exc = run_cli(detect_args(before, after, out))
    assert_clean_failure(code, lines, exc, out, expect=1, words="overlap|cover")


def test_no_common_band(good: dict[str, Path], tmp_path: Path) -> None:
    pan = write_raster(tmp_path / "pan.tif", count=2)
    out = tmp_path / "run"
    code, lines, exc = run_cli(detect_args(pan, good["after"], out))
    assert_clean_failure(code, lines, exc, out, expect=1, words="band")


# ---------------------------------------------------------------- legitimate oddities work
@pytest.mark.parametrize(
    "make_after",
    [
        pytest.param(lambda d: write_raster(d / "a16.tif", dtype="uint16", rng=3), id="12-bit"),
        pytest.param(
            lambda d: write_raster(d / "af.tif", dtype="float32", nodata=float("nan"), rng=3),
            id="float-nan-nodata",
        ),
    ],
)
def test_mixed_bit_depths_and_nan_nodata_work(
    make_after: Callable[[Path], Path], good: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    code, lines, exc = run_cli(detect_args(good["before"], make_after(tmp_path), out))
    assert code == 0, (lines, exc)
    assert (out / "detections.geojson").exists() and (out / "report.html").exists()


# ---------------------------------------------------------------- border files
def _geojson(d: Path, name: str, text: str) -> Path:
    path = d / name
    path.write_text(text)
    return path


def _fc(*geometries: dict) -> str:
    features = [{"type": "Feature", "properties": {}, "geometry": g} for g in geometries]
    return json.dumps({"type": "FeatureCollection", "features": features})


BORDER_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (lambda d: d / "nope.geojson", "nope.geojson"),
    "polygon": (
        lambda d: _geojson(
            d,
            "poly.geojson",
            _fc({"type": "Polygon", "coordinates": [[[125, 40], [126, 40], [126, 41], [125, 40]]]}),
        ),
        "polygon",
    ),
    "swapped lat/lon": (
        lambda d: _geojson(
            d,
            "swap.geojson",
            _fc({"type": "LineString", "coordinates": [[42.4, 129.7], [42.5, 129.8]]}),
        ),
        "swapped",
    ),
    "two unconnected lines": (
        lambda d: _geojson(
            d,
            "two.geojson",
            _fc(
                {
                    "type": "MultiLineString",
                    "coordinates": [[[125, 40], [125.1, 40]], [[126, 40], [126.1, 40]]],
                }
            ),
        ),
        "gap|join",
    ),
    "empty collection": (lambda d: _geojson(d, "empty.geojson", _fc()), "no features"),
    "invalid JSON": (
        lambda d: _geojson(d, "broken.geojson", '{"type": "FeatureColl'),
        "cannot read",
    ),
}


@pytest.mark.parametrize("case", list(BORDER_CASES))
def test_bad_border_file(case: str, good: dict[str, Path], tmp_path: Path) -> None:
    make, words = BORDER_CASES[case]
    path = make(tmp_path)
    out = tmp_path / "run"
    args = [*detect_args(good["before"], good["after"], out), "--border", str(path)]
    code, lines, exc = run_cli(args)
    assert_clean_failure(code, lines, exc, out, expect=1, words=words)
    assert path.name in lines[-1]


# ---------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("extra", "expect", "words"),
    [
        (["--km", "2000:2010"], 1, "outside"),
        (["--km", "811:810"], 1, "reversed"),
        (["--corridor-m", "-5"], 2, "corridor"),
        (["--corridor-m", "1e9"], 2, "corridor"),
        (["--bands", "0,x"], 2, "bands"),
        (["--clouds", "/nonexistent/clouds.geojson"], 2, "clouds.geojson"),
    ],
)
def test_bad_options(
    extra: list[str], expect: int, words: str, good: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    code, lines, exc = run_cli(detect_args(good["before"], good["after"], out) + extra)
    assert_clean_failure(code, lines, exc, out, expect=expect, words=words)


# ---------------------------------------------------------------- output folder
def test_out_not_writable(good: dict[str, Path]) -> None:
    out = Path("/proc/bordewatch-cannot-write-here")
    code, lines, exc = run_cli(detect_args(good["before"], good["after"], out))
    assert code == 1 and isinstance(exc, SystemExit) and len(lines) == 1
    assert str(out) in lines[0]


def test_out_is_an_existing_file(good: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "a_file"
    out.write_text("keep me")
    code, lines, exc = run_cli(detect_args(good["before"], good["after"], out))
    assert code in (1, 2) and isinstance(exc, SystemExit) and lines and "a_file" in lines[-1]
    assert out.read_text() == "keep me"


@pytest.fixture(scope="module")
def finished_run(good: dict[str, Path]) -> Path:
    out = good["dir"] / "finished"
    code, lines, exc = run_cli(detect_args(good["before"], good["after"], out))
    assert code == 0, (lines, exc)
    return out


def test_existing_outputs_need_overwrite(finished_run: Path, good: dict[str, Path]) -> None:
    before = (finished_run / "detections.geojson").read_bytes()
    code, lines, exc = run_cli(detect_args(good["before"], good["after"], finished_run))
    assert code == 1 and isinstance(exc, SystemExit) and len(lines) == 1
    assert "--overwrite" in lines[0]
    assert (finished_run / "detections.geojson").read_bytes() == before


def test_resume_with_other_parameters_is_refused(finished_run: Path, good: dict[str, Path]) -> None:
    args = detect_args(good["before"], good["after"], finished_run, "--resume")
    args[args.index("--corridor-m") + 1] = "250"
    code, lines, exc = run_cli(args)
    assert code == 1 and isinstance(exc, SystemExit) and len(lines) == 1
    assert "corridor" in lines[0]


# ---------------------------------------------------------------- model weights
def test_missing_model_weights(good: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = detect_args(good["before"], good["after"], out, "--method", "model")
    code, lines, exc = run_cli([*args, "--model", str(tmp_path / "gone.pt")])
    assert_clean_failure(code, lines, exc, out, expect=1, words="gone.pt")
    assert "make train" in lines[0]


def test_corrupt_model_weights(good: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(os.urandom(2048))
    out = tmp_path / "run"
    args = detect_args(good["before"], good["after"], out, "--method", "model")
    code, lines, exc = run_cli([*args, "--model", str(bad)])
    assert_clean_failure(code, lines, exc, out, expect=1, words="corrupt.pt")


# ---------------------------------------------------------------- scheduler
def test_scheduler_nobody_listens(good: dict[str, Path], tmp_path: Path) -> None:
    with socket.socket() as sock:  # a free port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "run"
    args = detect_args(good["before"], good["after"], out)
    args.remove("--workers")
    args.remove("1")
    code, lines, exc = run_cli([*args, "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert_clean_failure(code, lines, exc, out, expect=1, words="scheduler")


# ---------------------------------------------------------------- a real process
def test_real_process_prints_one_line_and_no_traceback(
    good: dict[str, Path], tmp_path: Path
) -> None:
    bad = _not_raster(tmp_path)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "bordewatch", *detect_args(bad, good["after"], out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1
    assert len(lines) == 1 and "notes.tif" in lines[0], lines
    assert "Traceback" not in proc.stderr


def test_fuzzed_border_lines_never_crash_the_loader(tmp_path: Path) -> None:
    """Random (often degenerate) lines either load or raise BorderError, never anything else."""
    from bordewatch.border import load_border
    from bordewatch.errors import BorderError

    gen = np.random.default_rng(7)
    for i in range(40):
        n = int(gen.integers(1, 6))
        coords = np.round(gen.uniform([124, 39], [131, 43], (n, 2)), int(gen.integers(0, 4)))
        if gen.random() < 0.3:
            coords = np.repeat(coords[:1], n, axis=0)  # all points equal
        geom = {"type": "LineString", "coordinates": coords.tolist()}
        path = _geojson(tmp_path, f"f{i}.geojson", _fc(geom))
        try:
            border = load_border(path)
        except BorderError:
            continue
        assert border.length_km > 0 and shapely.is_valid(border.line)
