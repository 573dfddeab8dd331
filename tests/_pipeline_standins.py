"""Small stand-ins for the stages the pipeline composes, for the pipeline's own tests.

The pipeline tests check composition (Dask, resume cache, failures, output folder), not the
detectors, so they replace imagery reading, alignment, detection, writers, roll-up and report
by these tiny, deterministic functions. ``install()`` puts them in place in this process; Dask
workers get them through ``dask_setup`` (``--preload tests/_pipeline_standins.py`` or the
``distributed.worker.preload`` config). The real ``plan_tiles`` and ``tiles_frame`` are used.

Environment knobs (they reach subprocesses and workers):
``BW_TEST_FAIL``: comma-separated tile ids whose read fails every time;
``BW_TEST_SLEEP``: seconds each tile sleeps (to kill runs mid-way).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import rasterio
import rasterio.warp
import shapely
from scipy import ndimage

from bordewatch.border import Border
from bordewatch.errors import ImageryError, TileError
from bordewatch.imagery import TilePair
from bordewatch.results import Detection, DetectorOutput
from bordewatch.tiling import Tile


@dataclass(frozen=True)
class FakeEpoch:
    name: str
    paths: tuple[str, ...]
    gsd_m: float


def open_epoch(paths: list[Path], *, name: str, bands: Any = None, cache: Any = None) -> FakeEpoch:
    for p in paths:
        if not Path(p).exists():
            raise ImageryError(f"{p}: not found")
    with rasterio.open(paths[0]) as src:
        gsd = float(src.res[0])
    return FakeEpoch(name, tuple(str(p) for p in paths), gsd)


def common_bands(before: FakeEpoch, after: FakeEpoch) -> tuple[str, ...]:
    return ("gray",)


def target_gsd_m(before: FakeEpoch, after: FakeEpoch) -> float:
    return max(before.gsd_m, after.gsd_m)


def load_clouds(path: Path) -> shapely.Geometry:
    return gpd.read_file(path).to_crs("EPSG:4326").union_all()


def _footprint(epoch: FakeEpoch, crs: str) -> shapely.Geometry:
    parts = []
    for p in epoch.paths:
        with rasterio.open(p) as src:
            b = rasterio.warp.transform_bounds(src.crs, crs, *src.bounds)
        parts.append(shapely.box(*b))
    return shapely.union_all(parts)


def tile_coverage(tiles: list[Tile], before: FakeEpoch, after: FakeEpoch) -> list[float]:
    out = []
    for t in tiles:
        both = _footprint(before, t.crs) & _footprint(after, t.crs)
        out.append(round(float((t.core & both).area / t.core.area), 6))
    return out


def check_overlap(coverage: list[float], before: Any, after: Any, border: Border) -> None:
    if not any(c > 0 for c in coverage):
        raise ImageryError("the before and after imagery do not both cover the corridor")


def read_pair(before: FakeEpoch, after: FakeEpoch, tile: Tile, **_: Any) -> TilePair:
    if tile.id in os.environ.get("BW_TEST_FAIL", "").split(","):
        raise TileError(f"planted failure on {tile.id}")
    time.sleep(float(os.environ.get("BW_TEST_SLEEP", "0")))
    arrays = []
    for epoch in (before, after):
        dst = np.zeros(tile.shape, np.float32)
        with rasterio.open(epoch.paths[0]) as src:
            rasterio.warp.reproject(
                rasterio.band(src, 1),
                dst,
                dst_transform=tile.affine,
                dst_crs=tile.crs,
                dst_nodata=0,
                resampling=rasterio.warp.Resampling.nearest,
            )
        arrays.append(dst[None] / 255.0)
    valid = (arrays[0][0] > 0) & (arrays[1][0] > 0)
    return TilePair(tile, arrays[0], arrays[1], valid, ("gray",))


def identity(pair: TilePair, **_: Any) -> TilePair:
    return pair


def detect_tile(pair: TilePair, config: Any) -> DetectorOutput:
    diff = np.abs(pair.after[0] - pair.before[0])
    hits = (diff > 0.3) & pair.valid
    labels, n = ndimage.label(hits)
    dets = []
    for i, (r, c) in enumerate(ndimage.center_of_mass(hits, labels, range(1, n + 1))):
        a, b, x0, d, e, y0 = pair.tile.transform
        x, y = a * (c + 0.5) + b * (r + 0.5) + x0, d * (c + 0.5) + e * (r + 0.5) + y0
        score = float(np.round(diff[labels == i + 1].mean(), 4))
        dets.append(Detection("watchtower", "new", score, shapely.Point(x, y)))
    change = np.where(pair.valid, diff, np.nan).astype(np.float32)
    return DetectorOutput(tuple(dets), change)


def write_tile_raster(array: np.ndarray, tile: Tile, path: Path) -> None:
    profile = dict(
        driver="GTiff",
        width=tile.width,
        height=tile.height,
        count=1,
        dtype="float32",
        crs=tile.crs,
        transform=tile.affine,
        nodata=np.nan,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array.astype(np.float32), 1)


def merge_detections(results: list[Any], tiles: list[Tile], border: Border) -> gpd.GeoDataFrame:
    by_id = {t.id: t for t in tiles}
    rows, geoms = [], []
    for res in results:
        tile = by_id[res.tile_id]
        to_ll = pyproj.Transformer.from_crs(tile.crs, "EPSG:4326", always_xy=True)
        for i, d in enumerate(res.detections):
            if not tile.core.contains(d.geometry):
                continue
            lon, lat = to_ll.transform(d.geometry.x, d.geometry.y)
            km, off, _ = border.locate([lon], [lat])
            rows.append(
                {
                    "id": f"{tile.id}-{i:04d}",
                    "class": d.cls,
                    "status": d.status,
                    "score": d.score,
                    "km": round(float(km[0]), 4),
                    "offset_m": round(float(off[0]), 2),
                    "tile": tile.id,
                    "method": res.method,
                }
            )
            geoms.append(shapely.Point(round(lon, 7), round(lat, 7)))
    return gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4326")


def write_geojson(gdf: gpd.GeoDataFrame, path: Path) -> None:
    feats = [
        {
            "type": "Feature",
            "properties": {k: row[k] for k in gdf.columns if k != "geometry"},
            "geometry": shapely.geometry.mapping(row.geometry),
        }
        for _, row in gdf.iterrows()
    ]
    Path(path).write_text(
        json.dumps({"type": "FeatureCollection", "features": feats}, sort_keys=True, default=float)
    )


def write_gpkg(path: Path, layers: dict[str, gpd.GeoDataFrame], *, crs: str) -> None:
    Path(path).write_text(json.dumps({k: len(v) for k, v in layers.items()} | {"crs": crs}))


def write_styles(directory: Path) -> None:
    Path(directory).mkdir(parents=True, exist_ok=True)
    (Path(directory) / "detections.qml").write_text("<qgis/>")


def write_change_cog(parts: list[str], path: Path, *, crs: str, gsd_m: float) -> None:
    Path(path).write_bytes(b"".join(Path(p).read_bytes()[:64] for p in parts))


def rollup_per_km(
    detections: Any, tiles: Any, border: Border, km_range: Any, *, side: str = "both"
) -> Any:
    seg = border.segments(1.0, km_range)
    seg["n"] = [
        int(((detections["km"] >= a) & (detections["km"] < b)).sum()) if len(detections) else 0
        for a, b in zip(seg.km_start, seg.km_end)
    ]
    return seg


@dataclass(frozen=True)
class _Head:
    n: int

    def lines(self) -> list[str]:
        return [f"Watchtowers: {self.n} new"]


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    headline: _Head


def build_report(run_dir: Path) -> ReportFiles:
    run = json.loads((Path(run_dir) / "run.json").read_text())
    n = len(json.loads((Path(run_dir) / "detections.geojson").read_text())["features"])
    (Path(run_dir) / "report.html").write_text(f"<p>{n} {run['tiles']['total']}</p>")
    return ReportFiles(Path(run_dir) / "report.html", _Head(n))


_STAGES = {
    "bordewatch.imagery": {
        "open_epoch": open_epoch,
        "common_bands": common_bands,
        "read_pair": read_pair,
        "target_gsd_m": target_gsd_m,
        "load_clouds": load_clouds,
    },
    "bordewatch.tiling": {"tile_coverage": tile_coverage, "check_overlap": check_overlap},
    "bordewatch.align": {"coregister": identity, "normalise": identity},
    "bordewatch.detect": {"detect_tile": detect_tile},
    "bordewatch.outputs": {
        "merge_detections": merge_detections,
        "write_geojson": write_geojson,
        "write_gpkg": write_gpkg,
        "write_styles": write_styles,
        "write_tile_raster": write_tile_raster,
        "write_change_cog": write_change_cog,
    },
    "bordewatch.rollup": {"rollup_per_km": rollup_per_km},
    "bordewatch.report": {"build_report": build_report},
}


def install(monkeypatch: Any = None) -> None:
    """Put the stand-ins in place (creating stage modules that do not exist yet).

    With pytest's ``monkeypatch`` every change is undone after the test, so other test modules
    in the session see the real stages; without it (subprocesses, Dask workers) it is permanent.
    """
    import bordewatch

    def put(obj: Any, attr: str, value: Any) -> None:
        if monkeypatch is None:
            setattr(obj, attr, value)
        else:
            monkeypatch.setattr(obj, attr, value, raising=False)

    for name, funcs in _STAGES.items():
        try:
            module = importlib.import_module(name)
        except Exception:  # not written yet, or mid-edit by its owner
            module = types.ModuleType(name)
            if monkeypatch is None:
                sys.modules[name] = module
            else:
                monkeypatch.setitem(sys.modules, name, module)
        put(bordewatch, name.rsplit(".", 1)[1], module)
        for attr, func in funcs.items():
            put(module, attr, func)


def dask_setup(worker: Any = None) -> None:
    """Dask preload hook: install the stand-ins in the worker process."""
    install()


def make_scene(
    directory: Path,
    border: Border,
    *,
    rng: int = 0,
    n_changes: int = 12,
    gsd: float = 10.0,
    count: int = 1,
    margin_m: float = 1500.0,
) -> tuple[Path, Path]:
    """Write a before/after pair (uint8, UTM) around ``border`` with planted bright squares."""
    crs = border.utm_crs()
    line = border.line_in(crs)
    x0, y0, x1, y1 = line.buffer(margin_m).bounds
    w, h = int((x1 - x0) / gsd), int((y1 - y0) / gsd)
    gen = np.random.default_rng(rng)
    before = gen.integers(60, 90, (count, h, w)).astype(np.uint8)
    after = before.copy()
    for r, c in zip(gen.integers(5, h - 5, n_changes), gen.integers(5, w - 5, n_changes)):
        after[:, r - 1 : r + 2, c - 1 : c + 2] = 250
    transform = rasterio.transform.from_origin(x0, y1, gsd, gsd)
    paths = []
    for name, arr in (("before", before), ("after", after)):
        p = Path(directory) / f"{name}.tif"
        with rasterio.open(
            p,
            "w",
            driver="GTiff",
            width=w,
            height=h,
            count=count,
            dtype="uint8",
            crs=crs,
            transform=transform,
            nodata=0,
        ) as dst:
            dst.write(arr)
        paths.append(p)
    return paths[0], paths[1]
