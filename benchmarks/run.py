"""``make bench``: throughput of ``bordewatch detect`` against the I/O floor, scaling, memory.

Measured in one run on the same synthetic scenes (``benchmarks/scenes.py``: tiled DEFLATE
4-band uint16 GeoTIFFs in UTM along the default North Korea–China line near Hoeryong, km 815+,
2 km corridor), and written to ``benchmarks/RESULTS.md`` with the machine's core count and the
command:

1. I/O floor: read the same before/after tile windows through ``imagery.read_pair`` (the
   pipeline's warping path; automatic haze flag off) and take an absolute difference — nothing
   else. Mpx/s = tile-grid pixels of one epoch per second, one process.
2. Full pipeline (``run_detect``, classical method, in-process with ``--workers 1``): Mpx/s,
   km of border per minute, at 1 m and 0.5 m, and the ratio to the floor.
3. Scaling: the same runs with 2 local Dask workers (an even number of tiles, at least 4, so
   that both workers have equal shares): the speed-up from the run's start to its last tile
   (planning, during which the cluster starts, and the tile phase), the workers' average busy
   cores in the tile phase and the per-tile slow-down against the 1-worker run.
4. Peak RSS of a worker process (``process_tile`` on pickled Epochs and Tiles, like a Dask
   task) at 0.5 m for scenes 5x and 20x the demo's area (the demo: 10 km of border x 2.4 km).
5. Projection: hours for 1,005 km and 1,352 km at 0.5 m with 2 workers on this machine.

Usage: ``python benchmarks/run.py [--quick] [--workdir DIR] [--results FILE]``. Not a test:
nothing asserts a time. ``--quick`` uses shorter stretches (about 8 minutes on 2 idle cores).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scenes import write_scene  # noqa: E402

from bordewatch.border import default_border  # noqa: E402

KM0 = 815.0
CORRIDOR_M = 1000.0  # half-width: a 2 km corridor
DEMO_AREA_KM2 = 10.0 * 2.4


@dataclass
class Results:
    """What the sections measured (rows for RESULTS.md) and what they could not."""

    rows: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)
    flush: Callable[[], None] | None = None

    def add(self, section: str, name: str, value: str) -> None:
        self.rows.setdefault(section, []).append((name, value))
        print(f"[{section}] {name}: {value}", flush=True)


def _section(results: Results, name: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception as err:  # a missing stage must not hide the other figures
        results.add(name, "not measured", f"{type(err).__name__}: {err}")
        traceback.print_exc()
    if results.flush is not None:
        results.flush()  # RESULTS.md so far: a killed bench still leaves its figures


# ---------------------------------------------------------------------- scenes
def _scene(workdir: Path, gsd_m: float, km: tuple[float, float], tag: str) -> tuple[Path, Path]:
    border = default_border()
    crs = border.utm_crs(*km)
    line = border.line_in(crs, km)
    dense = line.buffer(CORRIDOR_M + 300.0)
    bounds = dense.bounds
    epsg = f"EPSG:{crs.to_epsg()}"
    out = []
    for name, after in (("before", False), ("after", True)):
        path = workdir / f"{tag}_{name}.tif"
        if not path.exists():
            tmp = path.with_suffix(".tmp.tif")
            write_scene(tmp, crs=epsg, bounds=bounds, gsd_m=gsd_m, after=after, dense=dense, seed=7)
            tmp.replace(path)
        out.append(path)
    return out[0], out[1]


def _plan(
    before: Path, after: Path, gsd_m: float, km: tuple[float, float]
) -> tuple[Any, Any, list[Any], Any]:
    from bordewatch import imagery, tiling

    border = default_border()
    eb = imagery.open_epoch([before], name="before")
    ea = imagery.open_epoch([after], name="after")
    tiles = tiling.plan_tiles(border, km_range=km, corridor_m=CORRIDOR_M, gsd_m=gsd_m)
    return eb, ea, tiles, imagery.common_bands(eb, ea)


# ---------------------------------------------------------------------- 1. floor
def io_floor(
    results: Results, scene: tuple[Path, Path], gsd_m: float, km: tuple[float, float]
) -> None:
    from bordewatch import imagery

    eb, ea, tiles, bands = _plan(*scene, gsd_m, km)
    px = 0
    start = time.perf_counter()
    for tile in tiles:
        pair = imagery.read_pair(eb, ea, tile, bands=bands, auto_clouds=False)
        diff = np.empty_like(pair.before)
        np.subtract(pair.after, pair.before, out=diff)
        np.abs(diff, out=diff)
        px += tile.width * tile.height
    seconds = time.perf_counter() - start
    rate = px / seconds / 1e6
    results.values[f"floor_{gsd_m}"] = rate
    results.add(
        "1. I/O floor",
        f"{gsd_m:g} m, {len(tiles)} tiles ({px / 1e6:.0f} Mpx/epoch)",
        f"{rate:.2f} Mpx/s ({seconds:.1f} s)",
    )


# ---------------------------------------------------------------------- 2./3. pipeline
def pipeline_run(
    results: Results,
    scene: tuple[Path, Path],
    gsd_m: float,
    km: tuple[float, float],
    workers: int,
    workdir: Path,
) -> None:
    from bordewatch.pipeline import DetectRequest, run_detect

    out = workdir / f"run_{gsd_m:g}m_{workers}w"
    request = DetectRequest(
        before=(scene[0],),
        after=(scene[1],),
        out_dir=out,
        km_range=km,
        corridor_m=CORRIDOR_M,
        gsd_m=gsd_m,
        method="classical",
        workers=workers,
        overwrite=True,
        progress=False,
    )
    start = time.perf_counter()
    summary = run_detect(request)
    wall = time.perf_counter() - start
    run = json.loads((out / "run.json").read_text())
    detect_s = float(run["timings"].get("detect_s", wall))
    # the local cluster starts while the run plans: the speed-up counts from the run's start
    until_tiles = float(run["timings"].get("plan_s", 0.0)) + detect_s
    tiles = _tile_pixels(out)
    tile_s = _tile_seconds(out)
    km_len = km[1] - km[0]
    rate = tiles / detect_s / 1e6
    key = f"{gsd_m:g}m_{workers}w"
    results.values[f"rate_{key}"] = rate
    results.values[f"kmmin_{key}"] = km_len / (wall / 60.0)
    results.values[f"kmmin_tiles_{key}"] = km_len / (detect_s / 60.0)
    results.values[f"detect_s_{key}"] = detect_s
    results.values[f"until_tiles_{key}"] = until_tiles
    results.values[f"tile_s_{key}"] = tile_s
    floor = results.values.get(f"floor_{gsd_m}")
    ratio = f", {100 * rate / floor:.0f} % of the floor" if floor and workers == 1 else ""
    section = "2. Full pipeline" if workers == 1 else "3. Scaling"
    results.add(
        section,
        f"{gsd_m:g} m, {workers} worker(s), {summary.tiles_done}/{summary.tiles_total} tiles, "
        f"{summary.detections} detections",
        f"{rate:.2f} Mpx/s in tiles ({detect_s:.1f} s), {km_len / (wall / 60):.2f} km/min "
        f"end to end ({wall:.1f} s){ratio}",
    )
    if workers == 2 and f"until_tiles_{gsd_m:g}m_1w" in results.values:
        speedup = results.values[f"until_tiles_{gsd_m:g}m_1w"] / until_tiles
        results.values[f"speedup_{gsd_m:g}"] = speedup
        one_tile = results.values[f"tile_s_{gsd_m:g}m_1w"]
        results.add(
            "3. Scaling",
            f"{gsd_m:g} m speed-up 1 -> 2 workers ({summary.tiles_done} tiles; from the run's "
            "start to its last tile, cluster start-up included)",
            f"{speedup:.2f}x; workers busy {tile_s / detect_s:.2f} of 2 cores on average; "
            f"per-tile time {tile_s / one_tile:.2f}x that of the 1-worker run (contention)",
        )


def _tile_seconds(out: Path) -> float:
    """Sum of the per-tile task seconds (``tiles`` layer) of a run."""
    import pyogrio

    tiles = pyogrio.read_dataframe(out / "bordewatch.gpkg", layer="tiles")
    return float(tiles.loc[tiles["status"] == "done", "seconds"].sum())


def _tile_pixels(out: Path) -> float:
    import pyogrio

    tiles = pyogrio.read_dataframe(out / "bordewatch.gpkg", layer="tiles")
    done = tiles[tiles["status"] == "done"]
    return float((done["width"] * done["height"]).sum())


# ---------------------------------------------------------------------- 4. memory
# VmHWM (this process's own high-water mark, kB) rather than getrusage's ru_maxrss: Linux carries
# ru_maxrss across fork + exec, so a child launched by a big parent reports the parent's peak.
# the child scripts' common start: the repository on the path and the high-water mark reader
_CHILD = """
import pickle, sys, time
sys.path.insert(0, {repo!r})
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
"""
_WORKER = (
    _CHILD
    + """from bordewatch.pipeline import process_tile
from bordewatch.results import DetectConfig
eb, ea, tiles, bands = pickle.load(open({pkl!r}, "rb"))
base = hwm()
for tile in tiles:
    process_tile(tile, eb, ea, DetectConfig(), {cache!r}, run_key="bench", bands=bands)
peak = hwm()
print(base, peak)
"""
)


def peak_rss(results: Results, workdir: Path, scale: int, n_tiles: int) -> None:
    border = default_border()
    km_mid = KM0 + 5.0
    crs = border.utm_crs(km_mid - 1, km_mid + 1)
    epsg = f"EPSG:{crs.to_epsg()}"
    centre = shapely.get_coordinates(border.line_in(crs, (km_mid - 0.01, km_mid + 0.01)))[0]
    half = np.sqrt(DEMO_AREA_KM2 * scale) * 1000.0 / 2.0
    bounds = (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half)
    km = (km_mid, km_mid + n_tiles)
    dense = border.line_in(crs, km).buffer(CORRIDOR_M + 300.0)
    paths = []
    for name, after in (("before", False), ("after", True)):
        path = workdir / f"rss{scale}x_{name}.tif"
        if not path.exists():
            write_scene(path, crs=epsg, bounds=bounds, gsd_m=0.5, after=after, dense=dense, seed=3)
        paths.append(path)
    eb, ea, tiles, bands = _plan(paths[0], paths[1], 0.5, km)
    pkl = workdir / f"rss{scale}x.pkl"
    pkl.write_bytes(pickle.dumps((eb, ea, tiles, bands)))
    cache = workdir / f"rss{scale}x_cache"
    cache.mkdir(exist_ok=True)
    code = _WORKER.format(repo=str(HERE.parent), pkl=str(pkl), cache=str(cache))
    from bordewatch.pipeline import WORKER_ENV

    env = {**os.environ, **WORKER_ENV}  # what a worker process of the local cluster gets
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    base_kb, peak_kb = (int(v) for v in proc.stdout.split()[-2:])
    gpx = (bounds[2] - bounds[0]) * (bounds[3] - bounds[1]) / 0.25 / 1e9
    results.values[f"rss_{scale}"] = peak_kb / 1024
    results.add(
        "4. Peak RSS per worker (0.5 m)",
        f"scene {scale}x demo ({gpx:.2f} Gpx/epoch, {os.path.getsize(paths[0]) / 1e6:.0f} MB), "
        f"{len(tiles)} tiles of {tiles[0].width}x{tiles[0].height} px",
        f"{peak_kb / 1024:.0f} MB peak (after imports {base_kb / 1024:.0f} MB)",
    )


_OPENER = (
    _CHILD
    + """from bordewatch.imagery import open_epoch
base = hwm()
t = time.perf_counter()
for name, path in (("before", {before!r}), ("after", {after!r})):
    open_epoch([path], name=name)
print(base, hwm(), time.perf_counter() - t)
"""
)


def coordinator_open(results: Results, scene: tuple[Path, Path]) -> None:
    """Seconds and peak RSS of opening both epochs (footprints, statistics) in a fresh process.

    This is what the coordinating ``bordewatch detect`` process does before any tile runs; the
    scene files have no overviews (the worst case: every block is decoded).
    """
    code = _OPENER.format(repo=str(HERE.parent), before=str(scene[0]), after=str(scene[1]))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    base_kb, peak_kb, seconds = proc.stdout.split()[-3:]
    size = sum(os.path.getsize(p) for p in scene) / 1e6
    results.add(
        "4. Peak RSS per worker (0.5 m)",
        f"coordinator: opening both 0.5 m epochs ({size:.0f} MB of DEFLATE GeoTIFF, no overviews)",
        f"{int(peak_kb) / 1024:.0f} MB peak (after imports {int(base_kb) / 1024:.0f} MB), "
        f"{float(seconds):.1f} s",
    )


# ---------------------------------------------------------------------- 5. projection
def projection(results: Results) -> None:
    """Hours for the whole line from the tile phase's km/min (planning and report are fixed)."""
    two = results.values.get("kmmin_tiles_0.5m_2w")
    one = results.values.get("kmmin_tiles_0.5m_1w")
    if two is None and one is None:
        raise RuntimeError("no 0.5 m pipeline run to project from")
    rate, basis = (two, "2 workers") if two else (one, "1 worker")
    for length in (1005.0, 1352.0):
        hours = length / rate / 60.0
        results.add(
            "5. Projection at 0.5 m",
            f"{length:,.0f} km ({basis}, 2 km corridor, {rate:.2f} km/min in the tile phase)",
            f"{hours:.1f} h",
        )


# ---------------------------------------------------------------------- 6. stages
def stage_profile(
    results: Results, scene: tuple[Path, Path], gsd_m: float, km: tuple[float, float]
) -> None:
    """Seconds per stage for one tile, to show which stage dominates."""
    from bordewatch import align, detect, imagery, outputs
    from bordewatch.pipeline import analysed_polygon
    from bordewatch.results import DetectConfig

    eb, ea, tiles, bands = _plan(*scene, gsd_m, km)
    tile = tiles[0]
    imagery._torch()  # imported once per worker process (at its start): not a tile cost

    def clock() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    t = [clock()]
    pair = imagery.read_pair(eb, ea, tile, bands=bands)
    t.append(clock())
    pair = align.coregister(pair)
    t.append(clock())
    pair = align.normalise(pair)
    t.append(clock())
    output = detect.detect_tile(pair, DetectConfig())
    t.append(clock())
    with tempfile.TemporaryDirectory() as tmp:
        outputs.write_tile_raster(output.change, tile, Path(tmp) / "change.tif")
    t.append(clock())
    analysed_polygon(pair.valid, tile)
    t.append(clock())
    names = (
        "read_pair (warp both epochs)",
        "coregister",
        "normalise",
        "detect_tile (detectors, change score, vectorising)",
        "change-window write",
        "analysed polygon",
    )
    total = t[-1][0] - t[0][0]
    section = f"6. Stage profile, one {gsd_m:g} m tile ({tile.width * tile.height / 1e6:.1f} Mpx)"
    for name, a, b in zip(names, t[:-1], t[1:]):
        results.add(
            section,
            name,
            f"{b[0] - a[0]:.2f} s ({100 * (b[0] - a[0]) / total:.0f} %), CPU {b[1] - a[1]:.2f} s",
        )


# ---------------------------------------------------------------------- RESULTS.md
def write_results(results: Results, path: Path, command: str, seconds: float, quick: bool) -> None:
    load = os.getloadavg()
    load0 = (
        results.values.get("load1_start", math.nan),
        results.values.get("load5_start", math.nan),
    )
    lines = [
        "# bordewatch benchmark results",
        "",
        f"- command: `{command}`" + (" (quick mode)" if quick else ""),
        f"- machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, load average (1 / 5 min) at the start "
        f"{load0[0]:.1f} / {load0[1]:.1f}, at the end {load[0]:.1f} / {load[1]:.1f}",
        f"- written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, bench took {seconds / 60:.1f} min",
        "- scenes: synthetic 4-band uint16 DEFLATE GeoTIFFs (512x512 tiles) in UTM along the default "
        f"line from km {KM0:g}, corridor 2 km (+-{CORRIDOR_M:g} m); see benchmarks/scenes.py",
        "- targets (issue 7): pipeline >= 25 % of the I/O floor; >= 1.8x from 1 to 2 workers; "
        "peak RSS per worker <= 1.5 GB at 0.5 m; 1,005 km at 0.5 m in < 2 h on 2 cores",
        "",
    ]
    for section in sorted(results.rows):
        lines += [f"## {section}", "", "| case | result |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in results.rows[section]]
        lines.append("")
    if results.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in results.notes], ""]
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter stretches (a few minutes)")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: temp)")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--note", action="append", default=[], help="a note for RESULTS.md")
    parser.add_argument(
        "--max-memory-gb",
        type=float,
        default=12.0,
        help="address-space limit for the bench and its children (MemoryError, not the OOM killer)",
    )
    args = parser.parse_args(argv)
    limit = int(args.max_memory_gb * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    command = shlex.join(
        ["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]
    )
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return _bench(args, args.workdir, command)
    # about 3 GB of scenes and runs: removed even when the bench fails or is interrupted
    with tempfile.TemporaryDirectory(prefix="bordewatch-bench-") as tmp:
        return _bench(args, Path(tmp), command)


def _bench(args: argparse.Namespace, workdir: Path, command: str) -> int:
    """Run every section of the bench with scratch files under ``workdir``."""
    results = Results(notes=list(args.note))
    results.values["load1_start"], results.values["load5_start"] = os.getloadavg()[:2]
    start = time.perf_counter()
    results.flush = lambda: write_results(
        results, args.results, command, time.perf_counter() - start, args.quick
    )
    # >= 3 tiles, or a run stays in-process; an even count, so 2 workers get equal shares
    km1 = (KM0, KM0 + (6.0 if args.quick else 12.0))
    km05 = (KM0, KM0 + (4.0 if args.quick else 8.0))
    scenes: dict[float, tuple[Path, Path]] = {}

    def make_scenes() -> None:
        t0 = time.perf_counter()
        scenes[1.0] = _scene(workdir, 1.0, km1, "s1m")
        scenes[0.5] = _scene(workdir, 0.5, km05, "s05m")
        results.add("0. Setup", "writing the scenes", f"{time.perf_counter() - t0:.0f} s")

    _section(results, "0. Setup", make_scenes)
    for gsd, km in ((1.0, km1), (0.5, km05)):
        if gsd not in scenes:
            continue
        _section(results, "1. I/O floor", lambda g=gsd, k=km: io_floor(results, scenes[g], g, k))
        for workers in (1, 2):
            _section(
                results,
                "2. Full pipeline" if workers == 1 else "3. Scaling",
                lambda g=gsd, k=km, w=workers: pipeline_run(results, scenes[g], g, k, w, workdir),
            )
    for scale in (5, 20):
        _section(
            results,
            "4. Peak RSS per worker (0.5 m)",
            lambda s=scale: peak_rss(results, workdir, s, 1 if args.quick else 2),
        )
    if 0.5 in scenes:
        _section(
            results,
            "4. Peak RSS per worker (0.5 m)",
            lambda: coordinator_open(results, scenes[0.5]),
        )
    _section(results, "5. Projection at 0.5 m", lambda: projection(results))
    if 0.5 in scenes:
        _section(
            results, "6. Stage profile", lambda: stage_profile(results, scenes[0.5], 0.5, km05)
        )
    results.notes.append(
        f"peak RSS of the benchmark process itself: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    write_results(results, args.results, command, time.perf_counter() - start, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
