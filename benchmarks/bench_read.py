"""Tile reading and co-registration speed: ``read_pair``, ``coregister``, ``normalise``.

One tile of 1100 x 2101 px (1 km x 2 km at 1 m) is read from synthetic before/after scenes
(2560 x 2560 px, 1 m, UTM; *after* is the same landscape shifted by (0.6, -1.1) m with a gain)
in two encodings: 4-band uint16 DEFLATE tiled 512 GeoTIFF, and 4-band uint8 ZSTD (level 1) +
PREDICTOR=2. The tile grid is rotated by 30 degrees (as the tiler does where the border runs
diagonally) or north-up. Figures are Mpx/s per epoch: tile-grid pixels of one epoch divided by
the seconds ``read_pair`` takes for both epochs (the definition ``benchmarks/run.py`` uses for
the I/O floor), one process on one core (BLAS, GDAL and torch threads 1, as in a pipeline worker), best
of ``--repeat`` runs (the CPU is shared).

Usage: ``.venv/bin/python benchmarks/bench_read.py [--workdir DIR] [--repeat 3] [--engine
auto|gdal|both]``. ``--engine gdal`` forces GDAL's warper for every source (the old path).
:func:`measure` returns the figures as a dict for ``benchmarks/run.py``.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GDAL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # one core, like a pipeline worker (set before numpy loads)

import argparse  # noqa: E402
import functools  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
import shapely  # noqa: E402
from affine import Affine  # noqa: E402
from rasterio.windows import Window  # noqa: E402

from bordewatch.tiling import Tile  # noqa: E402

CRS = "EPSG:32652"
X0, Y0 = 500_000.0, 4_650_000.0  # scene centre
SCENE = 2560
TILE_H, TILE_W = 1100, 2101
SHIFT_M = (0.6, -1.1)  # after = before moved by (+x, +y) metres
ENCODINGS = {
    "uint16 DEFLATE": dict(dtype="uint16", compress="deflate"),
    "uint8 ZSTD+P2": dict(
        dtype="uint8", compress="zstd", zstd_level=1, predictor=2, photometric="MINISBLACK"
    ),
}


def _landscape(x: np.ndarray, y: np.ndarray, band: int) -> np.ndarray:
    """Terrain, fields and roads with ~1 m soft edges (band-limited enough that a sub-pixel
    shift of the scene is a sub-pixel shift of its pixels): a deterministic function of x, y."""
    t = 0.5 + 0.2 * np.sin(x / 311.0 + band) * np.cos(y / 257.0) + 0.1 * np.sin((x + y) / 83.0)
    fields = (
        0.08
        * np.tanh(38.0 * np.sin(x * (np.pi / 120.0) + band))
        * np.tanh(38.0 * np.sin(y * (np.pi / 90.0)))
    )
    d = (((x - 0.6 * y) % 400.0) - 200.0) / math.hypot(1.0, 0.6)  # distance to a road, m
    road = 0.25 * np.exp(-0.5 * (d / 2.0) ** 2)
    return t + fields + road


def write_scene(path: Path, *, after: bool, dtype: str, **opts: object) -> Path:
    """One epoch, written by 512-row strips (bounded memory)."""
    if path.exists():
        return path
    half = SCENE / 2.0
    transform = Affine(1.0, 0, X0 - half, 0, -1.0, Y0 + half)
    vmax = 4095.0 if dtype == "uint16" else 255.0
    profile = dict(
        driver="GTiff", width=SCENE, height=SCENE, count=4, dtype=dtype, crs=CRS,
        transform=transform, tiled=True, blockxsize=512, blockysize=512, **opts,
    )  # fmt: skip
    tmp = path.with_suffix(".tmp.tif")
    rng = np.random.default_rng(3 if after else 2)
    with rasterio.open(tmp, "w", **profile) as dst:
        for r0 in range(0, SCENE, 512):
            rows = np.arange(r0, min(SCENE, r0 + 512)) + 0.5
            x = X0 - half + np.arange(SCENE) + 0.5
            y = Y0 + half - rows
            xx, yy = np.meshgrid(x, y)
            if after:
                xx, yy = xx - SHIFT_M[0], yy - SHIFT_M[1]
            data = np.empty((4, len(rows), SCENE), np.float32)
            for b in range(4):
                data[b] = _landscape(xx, yy, b) * (1.05 if after else 1.0)
            data += rng.normal(0.0, 0.003, data.shape).astype(np.float32)
            out = np.clip(data * (0.8 * vmax), 1, vmax).astype(dtype)
            dst.write(out, window=Window(0, r0, SCENE, len(rows)))
    tmp.replace(path)
    return path


def make_tile(angle_deg: float) -> Tile:
    """A 1100 x 2101 px tile at 1 m centred on the scene, rotated by ``angle_deg``."""
    aff = (
        Affine.translation(X0, Y0)
        @ Affine.rotation(angle_deg)
        @ Affine.translation(-TILE_W / 2.0, TILE_H / 2.0)
        @ Affine.scale(1.0, -1.0)
    )
    core = shapely.box(X0 - 500, Y0 - 300, X0 + 500, Y0 + 300)
    return Tile(f"bench-{angle_deg:g}", 0, 0.0, 2.0, CRS, tuple(aff)[:6], TILE_W, TILE_H, 1.0, core)


def _best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def measure(
    workdir: Path, *, repeat: int = 3, engines: tuple[str, ...] = ("auto",)
) -> dict[str, float]:
    """Time read_pair / coregister / normalise; return ``{label: value}`` and print each line."""
    import torch

    from bordewatch import align, imagery

    torch.set_num_threads(1)  # one core, like a pipeline worker
    figures: dict[str, float] = {}
    px = TILE_W * TILE_H
    for enc, opts in ENCODINGS.items():
        tag = enc.split()[0]
        paths = [
            write_scene(workdir / f"bench_read_{tag}_{name}.tif", after=name == "after", **opts)
            for name in ("before", "after")
        ]
        before = imagery.open_epoch([paths[0]], name="before")
        after = imagery.open_epoch([paths[1]], name="after")
        for angle in (30.0, 0.0):
            tile = make_tile(angle)
            for engine in engines:
                kwargs = {} if engine == "auto" else {"engine": engine}
                read = functools.partial(
                    imagery.read_pair, before, after, tile, auto_clouds=False, **kwargs
                )
                seconds, pair = _best(read, repeat)
                label = f"read_pair {enc}, {angle:g} deg, {engine}"
                figures[label] = px / seconds / 1e6
                print(
                    f"{label}: {px / seconds / 1e6:.2f} Mpx/s per epoch ({seconds:.3f} s)",
                    flush=True,
                )
            if angle == 30.0:
                sec_c, reg = _best(lambda: align.coregister(pair), repeat)  # noqa: B023
                sec_n, _ = _best(lambda: align.normalise(reg), repeat)  # noqa: B023
                inv = ~Affine(*tile.transform[:2], 0.0, *tile.transform[3:5], 0.0)
                dc, dr = inv @ SHIFT_M  # after's displacement in tile pixels
                figures[f"coregister {enc} s"] = sec_c
                figures[f"normalise {enc} s"] = sec_n
                print(
                    f"coregister {enc}: {sec_c:.3f} s (shift {reg.shift_px[0]:+.2f}, "
                    f"{reg.shift_px[1]:+.2f} px, expected {-dr:+.2f}, {-dc:+.2f}, quality "
                    f"{reg.shift_quality:.2f}); "
                    f"normalise: {sec_n:.3f} s"
                )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engine", choices=("auto", "gdal", "both"), default="auto")
    args = parser.parse_args()
    engines = ("auto", "gdal") if args.engine == "both" else (args.engine,)
    workdir = args.workdir or Path(tempfile.gettempdir()) / "bordewatch-bench-read"
    workdir.mkdir(parents=True, exist_ok=True)
    measure(workdir, repeat=args.repeat, engines=engines)


if __name__ == "__main__":
    main()
