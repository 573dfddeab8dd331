"""Georeferenced synthetic scenes on a real border line (``bordewatch synth``).

The scene covers the corridor (± ``corridor_m``) of a km range of the border in the local UTM
CRS. Both epochs are rendered block by block (bounded memory) into tiled ZSTD GeoTIFFs and
converted to Cloud-Optimised GeoTIFFs; ground truth, clouds, all parameters and a quicklook are
written beside them. Every file is written atomically and is byte-identical for one seed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyproj
import rasterio
import rasterio.features
import rasterio.shutil
import shapely
from affine import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from bordewatch import __version__
from bordewatch.atomic import atomic_path, atomic_write_text
from bordewatch.border import Border, default_border
from bordewatch.errors import BordewatchError, OutputExistsError
from bordewatch.synth.nuisance import cloud_grid
from bordewatch.synth.plan import ScenePlan
from bordewatch.synth.presets import Preset, get_preset
from bordewatch.synth.render import render_block
from bordewatch.synth.scene import BAND_INDEX, build_plan, observable
from bordewatch.synth.splat import Grid

__all__ = ["OUTPUT_NAMES", "SceneFiles", "make_scene"]

OUTPUT_NAMES = (
    "before.tif",
    "after.tif",
    "truth.geojson",
    "clouds.geojson",
    "scene.json",
    "quicklook.png",
)
BLOCK_PX = 512
BAND_SETS = {"rgb": ("red", "green", "blue"), "rgbn": ("red", "green", "blue", "nir")}
DN_MAX = {"uint8": 254, "uint16": 4094}  # 0 is nodata; uint16 holds 12-bit data
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SceneFiles:
    """Paths of one written scene."""

    out_dir: Path
    before: Path
    after: Path
    truth: Path
    clouds: Path
    scene_json: Path
    quicklook: Path


def make_scene(
    out_dir: str | os.PathLike[str],
    *,
    border: Border | None = None,
    km_range: tuple[float, float] | None = None,
    gsd_m: float | None = None,
    rng: int | None = 0,
    preset: str | Preset = "demo",
    bands: str = "rgbn",
    dtype: str = "uint8",
    after_crs: str | None = None,
    corridor_m: float = 1000.0,
    overwrite: bool = False,
) -> SceneFiles:
    """Write a synthetic before/after scene with ground truth along a stretch of a border.

    Parameters
    ----------
    out_dir : path
        Output folder (created).
    border : Border, optional
        Default: the shipped North Korea–China line. Infrastructure goes on the side named
        ``PRK`` (the right side of the default line), or the right side for other lines.
    km_range : (float, float), optional
        Chainage range; default: the preset's (demo: 815–825 km, Hoeryong).
    gsd_m : float, optional
        Pixel size in metres (0.3–10); default: the preset's (1 m; ``hard``: 0.5 m).
    rng : int, optional
        Seed; the same seed gives byte-identical files.
    preset : str
        ``demo``, ``hoeryong``, ``hard`` or ``nothing_new``.
    bands : {"rgb", "rgbn"}
    dtype : {"uint8", "uint16"}
        ``uint16`` holds 12-bit values (1–4095; 0 is nodata).
    after_crs : str, optional
        Write ``after.tif`` in this CRS (e.g. ``"EPSG:4326"``) instead of the UTM zone.
    corridor_m : float
        Half width of the imaged corridor around the line, metres.
    overwrite : bool
        Replace existing outputs.

    Returns
    -------
    SceneFiles

    Raises
    ------
    OutputExistsError
        If outputs exist and ``overwrite`` is false.
    BordewatchError
        On invalid parameters.
    """
    out = Path(out_dir)
    _check_outputs(out, overwrite)
    pre = get_preset(preset)
    gsd = float(gsd_m if gsd_m is not None else pre.gsd_m)
    _check_args(gsd, bands, dtype, corridor_m)
    border = border if border is not None else default_border()
    km = _km_range(border, km_range if km_range is not None else _default_km(border, pre.km_range))
    seed = int(np.random.default_rng(rng).integers(0, 2**31 - 1))
    crs = border.utm_crs(*km)
    line = border.line_in(crs, km)
    xy = shapely.get_coordinates(line)
    corridor = line.buffer(corridor_m, cap_style="flat")
    bounds = _snap(corridor.bounds, gsd)
    rows = round((bounds[3] - bounds[1]) / gsd)
    cols = round((bounds[2] - bounds[0]) / gsd)
    gen = np.random.default_rng(seed)
    prk_sign = 1.0 if border.left.upper() == "PRK" else -1.0
    plan = build_plan(
        xy,
        bounds=bounds,
        gsd_m=gsd,
        preset=pre,
        rng=gen,
        seed=seed,
        prk_sign=prk_sign,
        half_width_m=corridor_m,
    )
    if after_crs is not None and plan.epochs[1].collar is None:
        plan = _with_after_collar(plan, bounds, gen)
    out.mkdir(parents=True, exist_ok=True)
    files = SceneFiles(out, *(out / n for n in OUTPUT_NAMES))
    band_names = BAND_SETS[bands]
    transform = Affine(gsd, 0.0, bounds[0], 0.0, -gsd, bounds[3])
    profile = _profile(len(band_names), rows, cols, dtype, crs, transform)
    tmp_b, tmp_a = (
        out / f".render-{os.getpid()}-before.tif",
        out / f".render-{os.getpid()}-after.tif",
    )
    try:
        stats = _render_rasters(plan, corridor, profile, band_names, (tmp_b, tmp_a))
        _to_cog(tmp_b, files.before, None)
        _to_cog(tmp_a, files.after, after_crs)
    finally:
        for t in (tmp_b, tmp_a):
            t.unlink(missing_ok=True)
    truth = _truth_features(plan, border, corridor, crs, bounds)
    _write_geojson(files.truth, truth)
    _write_geojson(files.clouds, _cloud_features(plan, bounds, crs))
    meta = _scene_meta(
        plan, border, km, crs, profile, band_names, dtype, after_crs, corridor_m, truth, stats
    )
    atomic_write_text(files.scene_json, json.dumps(meta, indent=1, sort_keys=True) + "\n")
    from bordewatch.synth.quicklook import write_quicklook

    write_quicklook(files, truth)
    return files


# ---------------------------------------------------------------------------------- checks
def _check_outputs(out: Path, overwrite: bool) -> None:
    existing = [n for n in OUTPUT_NAMES if (out / n).exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{out}: {', '.join(existing)} already exist; use --overwrite to replace them"
        )


def _check_args(gsd: float, bands: str, dtype: str, corridor_m: float) -> None:
    if not (0.3 <= gsd <= 10.0):
        raise BordewatchError(f"--gsd-m {gsd:g}: must be between 0.3 and 10 m")
    if bands not in BAND_SETS:
        raise BordewatchError(f"--bands {bands!r}: choose rgb or rgbn")
    if dtype not in DN_MAX:
        raise BordewatchError(f"--dtype {dtype!r}: choose uint8 or uint16")
    if not (100.0 <= corridor_m <= 5000.0):
        raise BordewatchError(f"corridor {corridor_m:g} m: must be between 100 and 5000 m")


def _km_range(border: Border, km: tuple[float, float]) -> tuple[float, float]:
    start, end = float(km[0]), min(float(km[1]), border.length_km)
    if start < 0 or start >= border.length_km or end - start < 0.2:
        raise BordewatchError(
            f"--km {km[0]:g}:{km[1]:g}: not a range of at least 0.2 km on border {border.name!r} "
            f"(0 to {border.length_km:.1f} km)"
        )
    if end - start > 60.0:
        raise BordewatchError(
            f"--km {start:g}:{end:g}: synthetic scenes are limited to 60 km; split the range"
        )
    return start, end


def _default_km(border: Border, km: tuple[float, float]) -> tuple[float, float]:
    """The preset's km range, or a stretch of the same length in the middle of another line."""
    if km[1] <= border.length_km:
        return km
    span = min(km[1] - km[0], border.length_km)
    mid = border.length_km / 2
    return max(0.0, mid - span / 2), min(border.length_km, mid + span / 2)


def _snap(b: tuple[float, float, float, float], gsd: float) -> tuple[float, float, float, float]:
    return (
        math.floor(b[0] / gsd) * gsd,
        math.floor(b[1] / gsd) * gsd,
        math.ceil(b[2] / gsd) * gsd,
        math.ceil(b[3] / gsd) * gsd,
    )


def _with_after_collar(
    plan: ScenePlan, bounds: tuple[float, float, float, float], gen: np.random.Generator
) -> ScenePlan:
    """Give *after* a partly different footprint (as another sensor's strip would have)."""
    ang = gen.uniform(0, 2 * np.pi)
    nx, ny = math.cos(ang), math.sin(ang)
    corners = np.array(
        [
            [bounds[0], bounds[1]],
            [bounds[0], bounds[3]],
            [bounds[2], bounds[1]],
            [bounds[2], bounds[3]],
        ]
    )
    proj = corners @ np.array([nx, ny])
    thr = float(proj.max() - gen.uniform(0.05, 0.12) * (proj.max() - proj.min()))
    after = replace(plan.epochs[1], collar=(nx, ny, thr))
    params = dict(plan.params)
    params["epochs"] = [params["epochs"][0], {**params["epochs"][1], "collar": [nx, ny, thr]}]
    return replace(plan, epochs=(plan.epochs[0], after), params=params)


# ---------------------------------------------------------------------------------- rasters
def _profile(
    count: int, rows: int, cols: int, dtype: str, crs: pyproj.CRS, transform: Affine
) -> dict[str, Any]:
    return {
        "driver": "GTiff",
        "width": cols,
        "height": rows,
        "count": count,
        "dtype": dtype,
        "crs": crs.to_wkt(),
        "transform": transform,
        "nodata": 0,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "ZSTD",
        "zstd_level": 1,
        "predictor": 2,
        "interleave": "pixel",
        "bigtiff": "IF_SAFER",
    }


def _blocks(rows: int, cols: int) -> Iterator[Window]:
    for r in range(0, rows, BLOCK_PX):
        for c in range(0, cols, BLOCK_PX):
            yield Window(c, r, min(BLOCK_PX, cols - c), min(BLOCK_PX, rows - r))


def _render_rasters(
    plan: ScenePlan,
    corridor: shapely.Geometry,
    profile: dict[str, Any],
    bands: tuple[str, ...],
    paths: tuple[Path, Path],
) -> dict[str, Any]:
    """Render both epochs block by block into two temporary GeoTIFFs; return pixel statistics."""
    transform: Affine = profile["transform"]
    dn = DN_MAX[profile["dtype"]]
    sel = [BAND_INDEX[b] for b in bands]
    area = corridor.buffer(50.0)
    n_px = n_valid = 0
    with (
        rasterio.open(paths[0], "w", **profile) as dst_b,
        rasterio.open(paths[1], "w", **profile) as dst_a,
    ):
        for b, name in enumerate(bands, start=1):
            dst_b.set_band_description(b, name)
            dst_a.set_band_description(b, name)
        for win in _blocks(profile["height"], profile["width"]):
            wt = rasterio.windows.transform(win, transform)
            box = shapely.box(*rasterio.windows.bounds(win, transform))
            if not box.intersects(area):
                continue
            inside = rasterio.features.geometry_mask(
                [area], out_shape=(win.height, win.width), transform=wt, invert=True
            )
            grid = Grid(wt.c, wt.f, plan.gsd, win.height, win.width)
            imgs = render_block(plan, grid)
            for img, present, dst in (
                (imgs.before, imgs.present[0], dst_b),
                (imgs.after, imgs.present[1], dst_a),
            ):
                ok = present & inside
                q = np.rint(img[sel] * dn).astype(profile["dtype"]) + 1
                q[:, ~ok] = 0
                dst.write(q, window=win)
            n_px += int(inside.sum())
            n_valid += int((imgs.valid & inside).sum())
    return {"corridor_px": n_px, "valid_px": n_valid}


def _to_cog(src: Path, dst: Path, crs: str | None) -> None:
    """Copy a rendered GeoTIFF to a COG (ZSTD 1 + predictor 2, overviews), optionally warped."""
    opts = {
        "driver": "COG",
        "COMPRESS": "ZSTD",
        "LEVEL": "1",
        "PREDICTOR": "2",
        "BLOCKSIZE": "512",
        "OVERVIEW_RESAMPLING": "AVERAGE",
        "BIGTIFF": "IF_SAFER",
        "NUM_THREADS": "1",
    }
    with atomic_path(dst) as tmp, rasterio.open(src) as ds:
        if crs is None:
            rasterio.shutil.copy(ds, tmp, **opts)
        else:
            try:
                target = pyproj.CRS.from_user_input(crs)
            except pyproj.exceptions.CRSError as err:
                raise BordewatchError(f"--after-crs {crs!r}: not a CRS ({err})") from err
            with WarpedVRT(
                ds, crs=target.to_wkt(), resampling=Resampling.bilinear, nodata=0
            ) as vrt:
                rasterio.shutil.copy(vrt, tmp, **opts)


# ---------------------------------------------------------------------------------- vectors
def _to_lonlat(crs: pyproj.CRS) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


def _geojson_geom(geom: shapely.Geometry, tf: pyproj.Transformer) -> dict[str, Any]:
    g = shapely.transform(geom, lambda c: np.column_stack(tf.transform(c[:, 0], c[:, 1])))
    g = shapely.set_precision(g, 1e-7) if not g.is_empty else g
    return json.loads(shapely.to_geojson(g))


def _truth_features(
    plan: ScenePlan,
    border: Border,
    corridor: shapely.Geometry,
    crs: pyproj.CRS,
    bounds: tuple[float, float, float, float],
) -> list[dict[str, Any]]:
    """Truth clipped to the corridor, located on the border, as GeoJSON features (EPSG:4326)."""
    tf = _to_lonlat(crs)
    area = corridor.intersection(shapely.box(*bounds))
    feats = []
    for t in plan.truth:
        g = t.geometry.intersection(area)
        parts = [p for p in shapely.get_parts(g) if not p.is_empty]
        for part in parts:
            if part.geom_type == "LineString" and part.length < 5.0:
                continue
            if part.geom_type not in ("LineString", "Point"):
                continue
            ref = part if part.geom_type == "Point" else part.interpolate(0.5, normalized=True)
            lon, lat = tf.transform(ref.x, ref.y)
            km, off, _ = border.locate([lon], [lat])
            props = {
                "id": "",
                "class": t.cls,
                "status": t.status,
                "score": 1.0,
                "km": round(float(km[0]), 4),
                "offset_m": round(float(off[0]), 2),
                "length_m": round(float(part.length), 2) if part.geom_type == "LineString" else 0.0,
                "tile": "",
                "method": "truth",
                "observable": observable(plan, part),
                "width_m": round(t.width_m, 2),
                "kind_before": t.kind_before,
                "kind_after": t.kind_after,
            }
            feats.append(
                {"type": "Feature", "properties": props, "geometry": _geojson_geom(part, tf)}
            )
    feats.sort(
        key=lambda f: (f["properties"]["km"], f["properties"]["class"], f["properties"]["offset_m"])
    )
    for i, f in enumerate(feats):
        f["properties"]["id"] = f"truth-{i:05d}"
    return feats


def _cloud_features(
    plan: ScenePlan, bounds: tuple[float, float, float, float], crs: pyproj.CRS
) -> list[dict[str, Any]]:
    """Cloud outlines (opacity ≥ 0.3) of each epoch, traced on a coarse grid."""
    tf = _to_lonlat(crs)
    step = max(4.0, plan.gsd * 8)
    xs = np.arange(bounds[0] + step / 2, bounds[2], step)
    ys = np.arange(bounds[3] - step / 2, bounds[1], -step)
    transform = Affine(step, 0, bounds[0], 0, -step, bounds[3])
    feats = []
    for ep in plan.epochs:
        if ep.cloud_cover <= 0:
            continue
        cloud, _ = cloud_grid(xs, ys, ep, plan.seed)
        mask = (cloud >= 0.3).astype(np.uint8)
        for geom, _v in rasterio.features.shapes(mask, mask=mask.astype(bool), transform=transform):
            poly = shapely.geometry.shape(geom).simplify(step / 2)
            if poly.is_empty:
                continue
            feats.append(
                {
                    "type": "Feature",
                    "properties": {
                        "epoch": ep.name,
                        "kind": "cloud",
                        "area_m2": round(float(poly.area), 1),
                    },
                    "geometry": _geojson_geom(poly, tf),
                }
            )
    return feats


def _write_geojson(path: Path, feats: list[dict[str, Any]]) -> None:
    fc = {"type": "FeatureCollection", "features": feats}
    atomic_write_text(path, json.dumps(fc, separators=(",", ":")) + "\n")


def _scene_meta(
    plan: ScenePlan,
    border: Border,
    km: tuple[float, float],
    crs: pyproj.CRS,
    profile: dict[str, Any],
    bands: tuple[str, ...],
    dtype: str,
    after_crs: str | None,
    corridor_m: float,
    truth: list[dict[str, Any]],
    stats: dict[str, Any],
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for f in truth:
        p = f["properties"]
        key = f"{p['class']}/{p['status']}"
        s = summary.setdefault(key, {"count": 0, "length_m": 0.0, "observable": 0})
        s["count"] += 1
        s["length_m"] = round(s["length_m"] + p["length_m"], 1)
        s["observable"] += int(p["observable"])
    params = json.loads(json.dumps(plan.params, default=_jsonable))
    return {
        "software": {
            "bordewatch": __version__,
            "numpy": np.__version__,
            "rasterio": rasterio.__version__,
            "gdal": rasterio.__gdal_version__,
        },
        "seed": plan.seed,
        "preset": params.get("preset"),
        "border": {
            "name": border.name,
            "source": border.source,
            "length_km": round(border.length_km, 3),
            "prk_side": "left" if plan.prk_sign > 0 else "right",
        },
        "km_range": list(km),
        "corridor_m": corridor_m,
        "crs": crs.to_string(),
        "after_crs": after_crs or crs.to_string(),
        "gsd_m": plan.gsd,
        "size_px": [profile["height"], profile["width"]],
        "bounds": list(plan.bounds),
        "bands": list(bands),
        "dtype": dtype,
        "dn_scale": DN_MAX[dtype],
        "nodata": 0,
        "pixels": stats,
        "truth_summary": dict(sorted(summary.items())),
        "params": params,
    }


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)
