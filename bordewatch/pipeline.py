"""The one place that composes the stages: plan tiles, run one Dask task per tile, merge, write.

``run_detect(request)`` is what ``bordewatch detect`` calls. Its steps:

1. load the border and open both epochs (paths and metadata only, no pixels);
2. plan tiles along the corridor (:func:`bordewatch.tiling.plan_tiles`), measure coverage, skip
   tiles with no valid before-and-after overlap;
3. run :func:`process_tile` once per tile that is not already in the resume cache. Each task
   reads its own windows, co-registers, normalises, detects, writes its change-score window
   into ``DIR/.tiles`` and returns a small :class:`~bordewatch.results.TileResult`: pixels never
   pass through the scheduler. The client stores each result atomically in the cache as it
   arrives, so a killed run loses at most the tiles in flight;
4. merge the tile results (always as read back from the cache, so a resumed run and a clean run
   merge identical values and write byte-identical ``detections.geojson``), write
   ``detections.geojson``, ``bordewatch.gpkg``, ``styles/``, ``change.tif`` and ``run.json``
   (each by temp + rename), then build the report.

Execution: by default a ``distributed.LocalCluster`` with one single-threaded worker *process*
per core (``workers``), with OpenMP/MKL/OpenBLAS/GDAL threads set to 1 (and torch's, inside the
workers) so cores are not oversubscribed. ``scheduler="tcp://HOST:PORT"`` submits the same tasks
to an existing Dask cluster, whose workers must see the input paths and the output folder at
the same paths. The local cluster is started in a background thread as soon as the tiles are
planned, and each worker imports the stages (and torch, one thread) at start through a Dask
preload (:func:`dask_setup`), so start-up overlaps planning instead of slowing the first tiles.
Runs with ``workers=1`` or at most two tiles to compute run in-process, without a cluster
(``workers=1``: torch pinned to one thread there too): starting one costs seconds and buys
nothing there. Tasks are retried once; a tile
that still fails is recorded (id, error) in run.json and the tiles layer and the run goes on,
unless ``strict``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import rasterio
import rasterio.features
import shapely

from bordewatch import __version__
from bordewatch.atomic import atomic_path, atomic_write_text, raise_if_disk_full, staged_dir
from bordewatch.border import Border, load_border, parse_km_range
from bordewatch.cache import CACHE_DIRNAME, TileCache, check_resume, file_identity, run_key
from bordewatch.errors import (
    DetectionError,
    OutputError,
    OutputExistsError,
    SchedulerError,
)
from bordewatch.memory import release_free_memory
from bordewatch.progress import Progress
from bordewatch.results import DetectConfig, TileResult
from bordewatch.tiling import Tile

__all__ = [
    "OUTPUT_NAMES",
    "DetectRequest",
    "RunSummary",
    "analysed_polygon",
    "headline_lines",
    "process_tile",
    "run_detect",
]

log = logging.getLogger(__name__)

Side = Literal["left", "right", "both"]
Method = Literal["classical", "model", "hybrid"]

#: Files and folders a run writes into ``--out`` (their presence means "outputs exist").
OUTPUT_NAMES = (
    "detections.geojson",
    "bordewatch.gpkg",
    "change.tif",
    "run.json",
    "segments.geojson",
    "coverage.csv",
    "report.html",
    "report.md",
    CACHE_DIRNAME,
)

#: Thread limits for worker processes: one core each, no oversubscription.
WORKER_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "GDAL_NUM_THREADS": "1",
    # a tile decodes each source block once (whole blocks, strip by strip), and the LPT order
    # rarely runs neighbours one after the other: a big block cache is resident memory only
    "GDAL_CACHEMAX": "64",
}
_CLUSTER_CONFIG = {
    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536. Setting it switches off
    # glibc's adaptive mmap threshold, so every array over 128 kB is mmapped, page-faulted in
    # and unmapped again, and a tile makes many float32 temporaries. With this and the
    # profiler below a 0.5 m bench tile took 17-19 s in a worker, without them 11-13 s
    # (benchmarks/RESULTS.md).
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    # a worker is sent its next tile only when it finishes one: tiles differ in size, and a
    # tile queued behind a big one on a busy worker would leave the other worker idle
    "distributed.scheduler.worker-saturation": 1.0,
}
_WORKER_CONFIG = {
    # the dashboard's statistical profiler samples the task thread's stack every 10 ms
    "distributed.worker.profile.enabled": False,
}
_CONNECT_TIMEOUT_S = 5
_IN_PROCESS_MAX_TILES = 2


@dataclass(frozen=True, slots=True)
class DetectRequest:
    """Everything ``bordewatch detect`` was asked to do (one field per option).

    Attributes
    ----------
    before, after : tuple of Path
        Rasters of each epoch, in mosaicking order (the first valid pixel wins).
    out_dir : Path
        The run folder.
    border, border_id : optional
        Border line file (default: the shipped North Korea–China line) and feature id.
    km_range : str or (float, float), optional
        ``"START:END"`` or a pair of km; default the whole line.
    corridor_m, side, tile_km, gsd_m, overlap_m
        Tiling (``gsd_m=None``: the coarser of the two epochs' native resolutions).
    method : {"classical", "model", "hybrid"}
    workers : int, optional
        Local worker processes (default: the CPU count); ignored with ``scheduler``.
    scheduler : str, optional
        ``tcp://HOST:PORT`` of an existing Dask scheduler.
    resume, overwrite, strict : bool
        Reuse finished tiles / replace existing outputs / stop at the first failed tile.
    clouds : Path, optional
        Cloud polygons or raster masking both epochs.
    auto_clouds : bool
        Flag thick cloud (bright, low-texture) and its whitish margins automatically.
    sun_azimuth : float, optional
        Sun azimuth in degrees (default: estimated per epoch).
    model_path : Path, optional
        Weight file for ``method="model"``/``"hybrid"`` (default: the shipped one in ``models/``).
    bands : tuple of int, optional
        Explicit band order (1-based) when the files do not say.
    progress : bool
        Show progress on stderr.
    command : str
        The command line, recorded in run.json.
    """

    before: tuple[Path, ...]
    after: tuple[Path, ...]
    out_dir: Path
    border: Path | None = None
    border_id: str | None = None
    km_range: str | tuple[float, float] | None = None
    corridor_m: float = 1000.0
    side: Side = "both"
    tile_km: float = 1.0
    gsd_m: float | None = None
    overlap_m: float = 50.0
    method: Method = "classical"
    workers: int | None = None
    scheduler: str | None = None
    resume: bool = False
    overwrite: bool = False
    strict: bool = False
    clouds: Path | None = None
    auto_clouds: bool = True
    sun_azimuth: float | None = None
    bands: tuple[int, ...] | None = None
    model_path: Path | None = None
    progress: bool = True
    command: str = ""


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a finished run did (``bordewatch detect`` prints it).

    Attributes
    ----------
    out_dir : Path
    tiles_total, tiles_done, tiles_resumed : int
        Planned tiles; tiles with results (computed now or resumed); of those, resumed.
    failed : tuple of (tile_id, error)
    skipped : tuple of str
        Tiles without valid before-and-after overlap.
    detections : int
        Features in ``detections.geojson``.
    seconds : float
        Wall time of the run.
    report_path : Path or None
        ``report.html`` when the report was built.
    headline : tuple of str
        The report's headline lines.
    """

    out_dir: Path
    tiles_total: int
    tiles_done: int
    tiles_resumed: int
    failed: tuple[tuple[str, str], ...]
    skipped: tuple[str, ...]
    detections: int
    seconds: float
    report_path: Path | None = None
    headline: tuple[str, ...] = ()


@dataclass(slots=True)
class _Run:
    """Mutable bookkeeping of a run in the client process."""

    request: DetectRequest
    border: Border
    km_range: tuple[float, float]
    tiles: list[Tile]
    coverage: list[float]
    config: DetectConfig
    bands: Any
    gsd_m: float
    parameters: dict[str, Any]
    inputs: dict[str, Any]
    cache: TileCache
    epochs: tuple[Any, Any]
    clouds: Any = None
    results: dict[str, TileResult] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    resumed: int = 0
    timings: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------- the task
def process_tile(
    tile: Tile,
    before: Any,
    after: Any,
    config: DetectConfig,
    cache_dir: str | os.PathLike[str],
    *,
    run_key: str = "",
    bands: Any = None,
    clouds: Any = None,
    auto_clouds: bool = True,
) -> TileResult:
    """Process one tile end to end (the Dask task); return its small result.

    Reads the tile's windows of both epochs, co-registers and normalises *after* to *before*,
    runs the detectors, writes the change-score window into ``cache_dir`` (atomically) and
    vectorises the analysed area (valid before *and* after, inside the tile's core).

    Parameters
    ----------
    tile : Tile
    before, after : Epoch
        From :func:`bordewatch.imagery.open_epoch` (paths and metadata only).
    config : DetectConfig
    cache_dir : path-like
        The run's ``.tiles`` folder; the change window goes to
        ``<tile_id>-<run_key>.change.tif`` there.
    run_key, bands, clouds, auto_clouds
        Cache key and reading options (see :func:`bordewatch.imagery.read_pair`).

    Returns
    -------
    TileResult
    """
    from bordewatch import align, detect, imagery, outputs

    start = time.perf_counter()
    _limit_threads_in_worker()
    pair = imagery.read_pair(
        before, after, tile, bands=bands, clouds=clouds, auto_clouds=auto_clouds
    )
    pair = align.normalise(align.coregister(pair))
    release_free_memory()  # the reading buffers' heap pages
    output = detect.detect_tile(pair, config)
    _limit_threads_in_worker()  # torch may have been imported by the detector
    change_path = Path(cache_dir) / f"{tile.id}-{run_key}.change.tif"
    with atomic_path(change_path) as tmp:
        outputs.write_tile_raster(output.change, tile, tmp)
    analysed = analysed_polygon(pair.valid, tile)
    core_area = float(tile.core.area)
    return TileResult(
        tile_id=tile.id,
        crs=tile.crs,
        method=config.method,
        detections=tuple(output.detections),
        analysed=analysed,
        analysed_fraction=min(1.0, analysed.area / core_area) if core_area > 0 else 0.0,
        shift_px=(float(pair.shift_px[0]), float(pair.shift_px[1])),
        shift_quality=float(pair.shift_quality),
        change_path=str(change_path),
        seconds=time.perf_counter() - start,
        info={"sun_azimuth_deg": [_maybe_float(v) for v in output.sun_azimuth_deg]},
    )


def analysed_polygon(valid: npt.NDArray[np.bool_], tile: Tile) -> shapely.Geometry:
    """Vectorise a tile's valid mask and clip it to the tile's core (tile CRS).

    The mask's outlines (``rasterio.features.shapes``) are simplified by one pixel, which keeps
    the polygon small (a few hundred vertices) without moving the area by more than a pixel row.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> from bordewatch.tiling import Tile
    >>> t = Tile("t", 0, 0.0, 1.0, "EPSG:32652", (1.0, 0.0, 0.0, 0.0, -1.0, 4.0), 4, 4, 1.0,
    ...          shapely.box(0, 0, 4, 4))
    >>> v = np.zeros((4, 4), bool); v[:, :2] = True
    >>> analysed_polygon(v, t).area
    8.0
    """
    if valid.all():
        return shapely.normalize(tile.core)
    if not valid.any():
        return shapely.Polygon()
    mask = valid.astype(np.uint8)
    parts = [
        shapely.geometry.shape(geom)
        for geom, _ in rasterio.features.shapes(mask, mask=valid, transform=tile.affine)
    ]
    merged = shapely.coverage_union_all(parts) if len(parts) > 1 else parts[0]
    simple = shapely.simplify(merged, tile.gsd_m, preserve_topology=True)
    return shapely.normalize(shapely.intersection(simple, tile.core))


def _limit_threads_in_worker() -> None:
    """Inside a Dask worker: one thread for BLAS/GDAL/torch (one worker process per core)."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return
    try:
        distributed.get_worker()
    except ValueError:
        return  # not in a worker: the caller's process keeps its settings
    for name, value in WORKER_ENV.items():
        os.environ.setdefault(name, value)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _maybe_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- the run
def run_detect(request: DetectRequest) -> RunSummary:
    """Run detection over the corridor and write the run folder.

    Parameters
    ----------
    request : DetectRequest

    Returns
    -------
    RunSummary

    Raises
    ------
    OutputExistsError
        Outputs exist in ``out_dir`` and neither ``overwrite`` nor ``resume`` was given.
    ResumeMismatchError
        ``resume`` on a folder made with other inputs or parameters (names the parameter).
    SchedulerError
        ``scheduler`` cannot be reached.
    DetectionError
        A tile failed and ``strict`` was set.
    BorderError, ImageryError, TileError
        Unusable inputs (from the stages).
    """
    start = time.perf_counter()
    _check_out_dir(request)
    hasher = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    stop = threading.Event()  # ends the checksum thread early on errors and Ctrl-C
    cluster = _ClusterStart(request)
    try:
        run = _plan(request, on_tiles=cluster.start)
        paths = [*request.before, *request.after]
        sha = hasher.submit(_checksums, paths, run.cache.directory, stop)
        progress = _make_progress(run)
        t0 = time.perf_counter()
        _execute(run, progress, cluster)
        progress.close()
        run.timings["detect_s"] = time.perf_counter() - t0
        checksums = sha.result()
    except BaseException:
        stop.set()
        raise
    finally:
        cluster.close()  # a cluster started but not used (every tile resumed, or an error)
        hasher.shutdown(wait=True)
    # Every final file is written into a staging folder and moved into place together (run.json
    # last), so a failure here (a full disk, say) leaves an earlier run's outputs as they were.
    with staged_dir(request.out_dir, replaces=OUTPUT_NAMES, last="run.json") as stage:
        t0 = time.perf_counter()
        n_detections = _write_outputs(run, checksums, start, stage)
        run.timings["write_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        report_path, headline = _build_report(stage)
        run.timings["report_s"] = time.perf_counter() - t0
        run.timings["total_s"] = time.perf_counter() - start
        _write_run_json(run, checksums, stage)
    if report_path is not None:
        report_path = request.out_dir / report_path.relative_to(stage)
    return RunSummary(
        out_dir=request.out_dir,
        tiles_total=len(run.tiles),
        tiles_done=len(run.results),
        tiles_resumed=run.resumed,
        failed=tuple(sorted(run.failed.items())),
        skipped=tuple(run.skipped),
        detections=n_detections,
        seconds=time.perf_counter() - start,
        report_path=report_path,
        headline=headline,
    )


def _check_out_dir(request: DetectRequest) -> None:
    out = request.out_dir
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".bordewatch-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise OutputError(f"--out {out}: cannot write there ({err.strerror or err})") from err
    present = [name for name in OUTPUT_NAMES if (out / name).exists()]
    if present and not (request.overwrite or request.resume):
        raise OutputExistsError(
            f"--out {out}: holds outputs of an earlier run ({', '.join(present[:3])}); "
            "use --overwrite to replace them, --resume to continue that run, or another --out"
        )


def _plan(request: DetectRequest, on_tiles: Callable[[int], None] | None = None) -> _Run:
    """Border, epochs, tiles, coverage, parameters and the resume cache (no pixels read).

    ``on_tiles(n)`` is called with the number of tiles as soon as the km range is known, before
    the imagery is probed (the run starts its local Dask cluster there, so the workers start and
    import while the epochs are opened, the tiles planned and the cache prepared); where an
    input is not a local file, once the tiles are planned.
    """
    from bordewatch import imagery, tiling

    t0 = time.perf_counter()
    border = load_border(request.border, border_id=request.border_id)
    km_range = _km_range(request.km_range, border)
    # a missing file (the commonest bad input) fails at once, without starting workers first;
    # other paths (URLs, /vsi) start them once the tiles are planned
    early = all(Path(p).is_file() for p in [*request.before, *request.after])
    if on_tiles is not None and early:
        on_tiles(tiling.tile_count(border, km_range=km_range, tile_km=request.tile_km))
    cache_dir = request.out_dir / CACHE_DIRNAME
    if request.overwrite and not request.resume:
        TileCache(cache_dir, "").clear()
    index = cache_dir / "imagery-index.json"  # per-file probes, keyed by path, size, mtime
    before = imagery.open_epoch(
        list(request.before), name="before", bands=request.bands, cache=index
    )
    after = imagery.open_epoch(list(request.after), name="after", bands=request.bands, cache=index)
    bands = imagery.common_bands(before, after)
    gsd_m = float(request.gsd_m) if request.gsd_m else imagery.target_gsd_m(before, after)
    clouds = None if request.clouds is None else imagery.load_clouds(request.clouds)
    tiles = tiling.plan_tiles(
        border,
        km_range=km_range,
        corridor_m=request.corridor_m,
        side=request.side,
        tile_km=request.tile_km,
        gsd_m=gsd_m,
        overlap_m=request.overlap_m,
    )
    if on_tiles is not None and not early:
        on_tiles(len(tiles))
    coverage = [float(c) for c in tiling.tile_coverage(tiles, before, after)]
    tiling.check_overlap(coverage, before, after, border)
    config = DetectConfig(
        method=request.method,
        sun_azimuth_deg=request.sun_azimuth,
        model_path=None if request.model_path is None else str(request.model_path),
    )
    if config.method in ("model", "hybrid"):
        from bordewatch.detect.model import load_model

        load_model(config.model_path)  # a missing or corrupt weight file fails before any tile
    parameters = _parameters(request, border, km_range, gsd_m, bands, config)
    inputs = _input_identities(request)
    cache = TileCache(cache_dir, run_key(inputs, parameters))
    if request.resume:
        check_resume(cache.directory, inputs, parameters)
    cache.prepare(inputs, parameters)
    run = _Run(
        request,
        border,
        km_range,
        tiles,
        coverage,
        config,
        bands,
        gsd_m,
        parameters,
        inputs,
        cache,
        (before, after),
        clouds,
    )
    run.timings["plan_s"] = time.perf_counter() - t0
    return run


def _km_range(value: str | tuple[float, float] | None, border: Border) -> tuple[float, float]:
    if value is None or isinstance(value, str):
        return parse_km_range(value, border)
    return parse_km_range(f"{float(value[0])}:{float(value[1])}", border)


def _parameters(
    request: DetectRequest,
    border: Border,
    km_range: tuple[float, float],
    gsd_m: float,
    bands: Any,
    config: DetectConfig,
) -> dict[str, Any]:
    """Every option that changes outputs (the resume key and run.json ``parameters``)."""
    return {
        "border": border.source,
        "border_name": border.name,
        "border_id": request.border_id,
        "km_range": [round(km_range[0], 6), round(km_range[1], 6)],
        "corridor_m": float(request.corridor_m),
        "side": request.side,
        "tile_km": float(request.tile_km),
        "gsd_m": float(gsd_m),
        "gsd_m_requested": request.gsd_m,
        "overlap_m": float(request.overlap_m),
        "bands": _plain(bands),
        "bands_requested": None if request.bands is None else list(request.bands),
        "clouds": None if request.clouds is None else str(request.clouds),
        "auto_clouds": request.auto_clouds,
        "detect": {k: _plain(v) for k, v in asdict(config).items()},
    }


def _plain(value: Any) -> Any:
    """Make a value JSON-plain (tuples -> lists, unknown objects -> str)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _input_identities(request: DetectRequest) -> dict[str, Any]:
    paths = {"before": request.before, "after": request.after}
    ids: dict[str, Any] = {k: [file_identity(p) for p in v] for k, v in paths.items()}
    for name, path in (("clouds", request.clouds), ("border", request.border)):
        ids[name] = file_identity(path) if path is not None and Path(path).is_file() else None
    return ids


def _make_progress(run: _Run) -> Progress:
    km = sum(t.km_end - t.km_start for t in run.tiles)
    return Progress(total_tiles=len(run.tiles), total_km=km, enabled=run.request.progress)


# ---------------------------------------------------------------------- execution
def _execute(run: _Run, progress: Progress, cluster: _ClusterStart | None = None) -> None:
    """Skip uncovered tiles, reload cached ones, compute the rest (in-process or on Dask)."""
    todo: list[Tile] = []
    cached = run.cache.done(t.id for t in run.tiles) if run.request.resume else {}
    for tile, cov in zip(run.tiles, run.coverage):
        km = tile.km_end - tile.km_start
        if cov <= 0:
            run.skipped.append(tile.id)
            progress.skip(km)
        elif tile.id in cached:
            run.results[tile.id] = cached[tile.id]
            run.resumed += 1
            progress.skip(km)
        else:
            todo.append(tile)
    if run.resumed:
        progress.note(f"resuming: {run.resumed} of {len(run.tiles)} tiles already done")
    if not todo:
        return
    in_process = run.request.scheduler is None and (
        run.request.workers == 1 or len(todo) <= _IN_PROCESS_MAX_TILES
    )
    if in_process:
        with _one_thread_if(run.request.workers == 1):
            _execute_in_process(run, todo, progress)
    else:
        with _dask_client(run.request, len(todo), progress, cluster) as client:
            _execute_dask(run, todo, progress, client)


@contextlib.contextmanager
def _one_thread_if(pin: bool) -> Iterator[None]:
    """``--workers 1`` in-process: torch on one thread too (restored afterwards).

    Worker processes get one thread from :data:`WORKER_ENV`; the in-process path runs in the
    caller's process, whose torch would otherwise use every core for the resampling passes.
    """
    if not pin:
        yield
        return
    from bordewatch.imagery import _torch

    torch = _torch()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _task_kwargs(run: _Run) -> dict[str, Any]:
    return {
        "run_key": run.cache.key,
        "bands": run.bands,
        "clouds": run.clouds,
        "auto_clouds": run.request.auto_clouds,
    }


def _execute_in_process(run: _Run, todo: list[Tile], progress: Progress) -> None:
    before, after = run.epochs
    kwargs = _task_kwargs(run)
    for tile in todo:
        error: BaseException | None = None
        for _attempt in range(2):  # like Dask's retries=1
            try:
                result = process_tile(
                    tile, before, after, run.config, run.cache.directory, **kwargs
                )
            except Exception as err:
                error = err
                continue
            error = None
            break
        _record(run, tile, None if error else result, error, progress)


def _execute_dask(run: _Run, todo: list[Tile], progress: Progress, client: Any) -> None:
    from distributed import as_completed

    epochs = client.scatter([_absolute_paths(e) for e in run.epochs], broadcast=False, hash=False)
    cache_dir = os.path.abspath(run.cache.directory)
    kwargs = _task_kwargs(run)
    if kwargs["clouds"] is not None:
        kwargs["clouds"] = client.scatter(kwargs["clouds"], broadcast=False, hash=False)
    futures = {}
    # biggest tiles first (stable): with one tile per worker at a time, a big tile left for
    # last would keep one worker busy while the others idle
    for tile in sorted(todo, key=lambda t: -t.width * t.height):
        fut = client.submit(
            process_tile,
            tile,
            epochs[0],
            epochs[1],
            run.config,
            cache_dir,
            retries=1,
            pure=False,
            key=f"bordewatch-{tile.id}-{run.cache.key}",
            **kwargs,
        )
        futures[fut] = tile
    try:
        for fut in as_completed(futures, loop=client.loop):
            tile = futures[fut]
            if fut.status == "finished":
                _record(run, tile, fut.result(), None, progress)
            else:
                _record(run, tile, None, _future_error(fut), progress)
            fut.release()
    finally:
        client.cancel(list(futures))


def _absolute_paths(epoch: Any) -> Any:
    """The epoch with its local relative source paths made absolute.

    A worker of a user's cluster resolves a relative path against its own working directory,
    so ``--before data/x.tif`` would fail there; URLs and GDAL ``/vsi`` paths stay as given.
    """
    if not hasattr(epoch, "sources"):  # an epoch without files (the tests' stand-ins)
        return epoch
    sources = tuple(
        replace(s, path=os.path.abspath(s.path))
        if not os.path.isabs(s.path) and os.path.exists(s.path)
        else s
        for s in epoch.sources
    )
    return replace(epoch, sources=sources)


def _future_error(fut: Any) -> BaseException:
    try:
        err = fut.exception()
    except Exception as exc:  # cancelled / lost futures
        return exc
    return err if isinstance(err, BaseException) else RuntimeError(str(err))


def _record(
    run: _Run,
    tile: Tile,
    result: TileResult | None,
    error: BaseException | None,
    progress: Progress,
) -> None:
    """Store a finished tile in the cache (and use it as read back) or record its failure."""
    km = tile.km_end - tile.km_start
    pixels = float(tile.width * tile.height)
    if result is not None:
        try:
            run.results[tile.id] = run.cache.store(result)
        except Exception as err:
            raise_if_disk_full(run.cache.directory, err)
            raise
        progress.advance(km, pixels)
        return
    if error is not None:  # a full disk fails every later tile too: stop now, keep what is done
        raise_if_disk_full(run.cache.directory, error)
    message = f"{type(error).__name__}: {error}"
    run.failed[tile.id] = message
    progress.advance(km, pixels, failed=True)
    log.warning("tile %s failed: %s", tile.id, message)
    if run.request.strict:
        raise DetectionError(f"tile {tile.id} failed ({message}); stopped because of --strict")


@contextlib.contextmanager
def _dask_client(
    request: DetectRequest,
    n_tasks: int,
    progress: Progress,
    started: _ClusterStart | None = None,
) -> Iterator[Any]:
    """A client on ``request.scheduler``, or on a LocalCluster of single-threaded processes.

    ``started``: a cluster already starting in the background (:class:`_ClusterStart`).
    """
    from distributed import Client

    _quiet_dask_logs()

    if request.scheduler:
        try:
            client = Client(request.scheduler, timeout=_CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, ValueError, TypeError) as err:
            raise SchedulerError(
                f"no Dask scheduler at {request.scheduler} ({err}); start one with "
                "`dask scheduler` or drop --scheduler to run locally"
            ) from err
        with client:
            _log_dashboard(client, progress)
            _warn_slow_workers(client)
            yield client
        return
    cluster = started.take() if started is not None else None
    if cluster is None:
        cluster = _local_cluster(max(1, min(request.workers or os.cpu_count() or 1, n_tasks)))
    with cluster, Client(cluster, set_as_default=False) as client:
        _log_dashboard(client, progress)
        yield client


def _local_cluster(n_workers: int) -> Any:
    """A LocalCluster of ``n_workers`` single-threaded worker processes, warmed up.

    Each worker runs :func:`dask_setup` at start (a Dask preload, after any preloads from the
    Dask config), so the heavy imports happen while the cluster starts, not in the first tile.
    Workers start without Dask's ``MALLOC_TRIM_THRESHOLD_`` and without the stack-sampling
    profiler, and take one tile at a time (``_CLUSTER_CONFIG``, ``_WORKER_CONFIG``).
    """
    import dask.config
    from distributed import LocalCluster

    _quiet_dask_logs()
    preload = list(dask.config.get("distributed.worker.preload", None) or [])
    with dask.config.set(_CLUSTER_CONFIG):
        return LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            env=dict(WORKER_ENV),
            silence_logs=logging.ERROR,
            preload=[*preload, __name__],
            config=dict(_WORKER_CONFIG),
        )


def dask_setup(worker: Any = None) -> None:
    """Dask preload hook: import the stages (and torch, single-threaded) in a new worker.

    Any failure is left to the first task to report (with the tile's id).
    """
    with contextlib.suppress(Exception):
        from bordewatch import align, detect, imagery, outputs  # noqa: F401

        imagery._torch().set_num_threads(1)


class _ClusterStart:
    """A local cluster started in a background thread while the run plans.

    :meth:`start` is called with the number of planned tiles; it starts a cluster only for a
    local run that will use one (``workers != 1``, more tiles than run in-process).
    :meth:`take` hands it over (None when none was started); :meth:`close` shuts an untaken
    one down.
    """

    def __init__(self, request: DetectRequest) -> None:
        self._request = request
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._future: concurrent.futures.Future[Any] | None = None

    def start(self, n_tiles: int) -> None:
        request = self._request
        if request.scheduler or request.workers == 1 or n_tiles <= _IN_PROCESS_MAX_TILES:
            return
        n_workers = max(1, min(request.workers or os.cpu_count() or 1, n_tiles))
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self._future = self._pool.submit(_local_cluster, n_workers)

    def take(self) -> Any:
        future, self._future = self._future, None
        if future is None:
            return None
        try:
            return future.result()
        finally:
            self._shutdown_pool()

    def close(self) -> None:
        future, self._future = self._future, None
        if future is not None:
            with contextlib.suppress(Exception):
                future.result().close()
        self._shutdown_pool()

    def _shutdown_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _quiet_dask_logs() -> None:
    """Keep Dask's own loggers to real problems unless the user asked for debug logs (-vv).

    Importing ``distributed`` sets its loggers to INFO (they would print the scheduler's
    start-up chatter), and closing a LocalCluster can log a harmless CommClosedError traceback
    from the batched sender; so this runs after the import.
    """
    if logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
        return
    for name in ("distributed", "tornado", "bokeh"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("distributed.batched").setLevel(logging.CRITICAL)


def slow_worker_settings(dask_worker: Any = None) -> list[str]:
    """The Dask defaults in this worker process that slow tiles down (run on each worker).

    See ``_CLUSTER_CONFIG`` and ``_WORKER_CONFIG``: the local cluster turns both off, a user's
    own cluster needs the README's config file.
    """
    import dask.config

    found = []
    if os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        found.append("MALLOC_TRIM_THRESHOLD_ set")
    if dask.config.get("distributed.worker.profile.enabled", False):
        found.append("the stack-sampling profiler on")
    return found


def _warn_slow_workers(client: Any) -> None:
    """Log one warning when workers of a user's cluster run with :func:`slow_worker_settings`."""
    try:
        found = client.run(slow_worker_settings)
    except Exception:  # an unusual worker: the run itself will tell
        return
    slow = [reasons for reasons in found.values() if reasons]
    if slow:
        what = " and ".join(sorted({r for reasons in slow for r in reasons}))
        log.warning(
            "%d of %d Dask workers run with %s: tiles take 30-60 %% longer; see the README, "
            "'Running big jobs', for the worker config file",
            len(slow),
            len(found),
            what,
        )


def _log_dashboard(client: Any, progress: Progress) -> None:
    services = client.scheduler_info().get("services", {})
    where = client.scheduler.address
    if "dashboard" in services:
        progress.note(f"dask scheduler {where}; dashboard {client.dashboard_link}")
    else:
        progress.note(f"dask scheduler {where} (dashboard off: install bokeh to get one)")
    log.info("dask scheduler %s, %d workers", where, len(client.scheduler_info()["workers"]))


# ---------------------------------------------------------------------- writing
def _write_outputs(run: _Run, checksums: dict[str, str], start: float, out: Path) -> int:
    """Merge and write every final file into ``out``; return the number of detections."""
    from bordewatch import outputs, rollup

    ordered = [run.results[t.id] for t in run.tiles if t.id in run.results]
    detections = outputs.merge_detections(ordered, run.tiles, run.border)
    with atomic_path(out / "detections.geojson") as tmp:
        outputs.write_geojson(detections, tmp)
    tiles_gdf = _tiles_layer(run)
    segments = rollup.rollup_per_km(
        detections, tiles_gdf, run.border, run.km_range, side=run.request.side
    )
    crs = _run_crs(run)
    layers = {
        "detections": detections,
        "segments": segments,
        "tiles": tiles_gdf,
        "border": run.border.to_geodataframe(),
    }
    with atomic_path(out / "bordewatch.gpkg") as tmp:
        outputs.write_gpkg(tmp, layers, crs=crs)
    outputs.write_styles(out / "styles")
    parts = [r.change_path for r in ordered if r.change_path and Path(r.change_path).exists()]
    if parts:
        with atomic_path(out / "change.tif") as tmp:
            outputs.write_change_cog(parts, tmp, crs=crs, gsd_m=run.gsd_m)
    run.timings["total_s"] = time.perf_counter() - start
    _write_run_json(run, checksums, out)  # the report reads it
    return len(detections)


def _write_run_json(run: _Run, checksums: dict[str, str], out: Path) -> None:
    text = json.dumps(_run_record(run, checksums), indent=2, default=str)
    atomic_write_text(out / "run.json", text + "\n")


def _run_crs(run: _Run) -> str:
    epsg = run.border.utm_crs(*run.km_range).to_epsg()
    return f"EPSG:{epsg}"


def _tiles_layer(run: _Run) -> Any:
    """The ``tiles`` layer: the planner's frame plus per-tile outcome columns."""
    from bordewatch import tiling

    frame = tiling.tiles_frame(run.tiles, run.coverage)
    rows = [_tile_row(run, t) for t in run.tiles]
    for column in (
        "analysed_fraction",
        "shift_row",
        "shift_col",
        "shift_quality",
        "status",
        "error",
        "seconds",
    ):
        frame[column] = [r[column] for r in rows]
    return frame


def _tile_row(run: _Run, tile: Tile) -> dict[str, Any]:
    result = run.results.get(tile.id)
    if result is not None:
        return {
            "analysed_fraction": result.analysed_fraction,
            "shift_row": result.shift_px[0],
            "shift_col": result.shift_px[1],
            "shift_quality": result.shift_quality,
            "status": "done",
            "error": None,
            "seconds": round(result.seconds, 3),
        }
    status = "failed" if tile.id in run.failed else "skipped"
    error = run.failed.get(
        tile.id, "no valid before-and-after overlap" if status == "skipped" else None
    )
    return {
        "analysed_fraction": 0.0,
        "shift_row": float("nan"),
        "shift_col": float("nan"),
        "shift_quality": 0.0,
        "status": status,
        "error": error,
        "seconds": 0.0,
    }


def _run_record(run: _Run, checksums: dict[str, str]) -> dict[str, Any]:
    """The run.json document (timings and dates live here only, never in detections)."""
    request = run.request
    return {
        "bordewatch_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": request.command,
        "inputs": {
            "before": [_describe_input(p, run.epochs[0], checksums) for p in request.before],
            "after": [_describe_input(p, run.epochs[1], checksums) for p in request.after],
        },
        "border": {
            "name": run.border.name,
            "source": run.border.source,
            "length_km": round(run.border.length_km, 3),
            "left": run.border.left,
            "right": run.border.right,
        },
        "km_range": [run.km_range[0], run.km_range[1]],
        "parameters": {
            **run.parameters,
            "method": request.method,
            "sun_azimuth": request.sun_azimuth,
            "workers": request.workers,
            "scheduler": request.scheduler,
            "resume": request.resume,
            "overwrite": request.overwrite,
            "strict": request.strict,
            "run_key": run.cache.key,
        },
        "tiles": {
            "total": len(run.tiles),
            "done": len(run.results),
            "resumed": run.resumed,
            "failed": [{"id": k, "error": v} for k, v in sorted(run.failed.items())],
            "skipped": list(run.skipped),
        },
        "timings": {k: round(v, 3) for k, v in run.timings.items()},
        "crs": _run_crs(run),
        "software": _versions(),
    }


def _describe_input(path: Path, epoch: Any, checksums: dict[str, str]) -> dict[str, Any]:
    """One input file for run.json: size, checksum, CRS, GSD, band names, dtype, scaling."""
    record: dict[str, Any] = {"path": str(path), "bytes": Path(path).stat().st_size}
    record["sha256"] = checksums.get(str(Path(path).resolve()))
    source = next((s for s in getattr(epoch, "sources", ()) if _same_file(s.path, path)), None)
    if source is not None:
        record["crs"] = _crs_name(source.crs)
        record["gsd_m"] = round(float(source.gsd_m), 4)
        record["bands"] = list(source.band_names)
        record["dtype"] = source.dtype
        record["scaling"] = getattr(source, "scale_note", None)
        return record
    try:
        with rasterio.open(path) as src:
            record["crs"] = src.crs.to_string() if src.crs else None
            record["gsd_m"] = _pixel_metres(src)
            record["bands"] = [ci.name for ci in src.colorinterp]
            record["dtype"] = src.dtypes[0]
    except rasterio.errors.RasterioError:
        record.update(crs=None, gsd_m=None, bands=[], dtype=None)
    return record


def _crs_name(crs: str) -> str:
    """``"EPSG:32652"`` where the CRS has a code, else its WKT."""
    try:
        return str(rasterio.crs.CRS.from_user_input(crs).to_string())
    except rasterio.errors.CRSError:
        return crs


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def _pixel_metres(src: Any) -> float | None:
    if src.crs is None:
        return None
    res = float(abs(src.res[0]))
    if src.crs.is_geographic:
        lat = (src.bounds.bottom + src.bounds.top) / 2.0
        return round(res * 111_320.0 * float(np.cos(np.radians(lat))), 4)
    return round(res * float(src.crs.linear_units_factor[1]), 4)


def _checksums(paths: Sequence[Path], cache_dir: Path, stop: threading.Event) -> dict[str, str]:
    """sha256 of each input, remembered in the cache by (path, size, mtime) across resumes.

    Runs in a thread beside the tile tasks (hashlib releases the GIL); ``stop`` ends it early.
    """
    memo_path = cache_dir / "sha256.json"
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    out: dict[str, str] = {}
    for path in paths:
        ident = file_identity(path)
        token = f"{ident['path']}|{ident['bytes']}|{ident['mtime_ns']}"
        if token not in memo:
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 22), b""):
                    if stop.is_set():
                        return out
                    digest.update(block)
            memo[token] = digest.hexdigest()
        out[ident["path"]] = memo[token]
    atomic_write_text(memo_path, json.dumps(memo, sort_keys=True, indent=1) + "\n")
    return out


def _versions() -> dict[str, str]:
    import geopandas
    import shapely as _shapely

    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "rasterio": rasterio.__version__,
        "gdal": rasterio.__gdal_version__,
        "shapely": _shapely.__version__,
        "geopandas": geopandas.__version__,
    }


# ---------------------------------------------------------------------- report
def _build_report(run_dir: Path) -> tuple[Path | None, tuple[str, ...]]:
    from bordewatch import report

    files = report.build_report(run_dir)
    html = getattr(files, "html", None) or getattr(files, "html_path", None)
    return (Path(html) if html else run_dir / "report.html"), tuple(headline_lines(files))


def headline_lines(report_files: Any) -> list[str]:
    """Extract the headline lines from whatever the report stage returned.

    Accepts an object with a ``headline`` (or ``headlines``) attribute that is a string, a list
    of strings, or an object with a ``lines()`` method.
    """
    value = None
    for name in ("headline", "headlines", "headline_lines"):
        value = getattr(report_files, name, None)
        if value is not None:
            break
    if value is None:
        return []
    if callable(getattr(value, "lines", None)):
        value = value.lines()
    if isinstance(value, str):
        return [line for line in value.splitlines() if line.strip()]
    return [str(v) for v in value]
