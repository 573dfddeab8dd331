"""Quicklook PNG of a written scene: before | after | truth over after (downsampled)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyproj
import rasterio
from PIL import Image, ImageDraw
from rasterio.enums import Resampling

from bordewatch.atomic import atomic_path

if TYPE_CHECKING:
    from bordewatch.synth.geo import SceneFiles

__all__ = ["STATUS_COLOURS", "pair_quicklook", "write_quicklook"]

STATUS_COLOURS = {
    "new": (255, 40, 40),
    "existing": (255, 220, 0),
    "upgraded": (255, 0, 255),
    "removed": (0, 230, 255),
}


def _read_rgb(path: Any, shape: tuple[int, int], ref: Any) -> npt.NDArray[np.uint8]:
    """Read RGB of ``path`` onto the grid of dataset ``ref`` at ``shape``, stretched to uint8."""
    with rasterio.open(path) as ds:
        if ds.crs == ref.crs and ds.transform == ref.transform:
            a = ds.read([1, 2, 3], out_shape=(3, *shape), resampling=Resampling.average).astype(
                np.float32
            )
        else:
            from rasterio.vrt import WarpedVRT

            with WarpedVRT(
                ds,
                crs=ref.crs,
                transform=ref.transform,
                width=ref.width,
                height=ref.height,
                nodata=0,
            ) as v:
                a = v.read([1, 2, 3], out_shape=(3, *shape), resampling=Resampling.average).astype(
                    np.float32
                )
        scale = 255.0 / (254.0 if ds.dtypes[0] == "uint8" else 4094.0)
    return np.clip(a * scale, 0, 255).astype(np.uint8).transpose(1, 2, 0)


def write_quicklook(files: SceneFiles, truth: list[dict[str, Any]], *, max_px: int = 900) -> None:
    """Write ``quicklook.png``: before, after, and truth drawn over a dimmed after."""
    with rasterio.open(files.before) as ref:
        f = max(1.0, max(ref.height, ref.width) / max_px)
        shape = (max(1, int(ref.height / f)), max(1, int(ref.width / f)))
        before = _read_rgb(files.before, shape, ref)
        after = _read_rgb(files.after, shape, ref)
        inv = ~ref.transform
        tf = pyproj.Transformer.from_crs("EPSG:4326", ref.crs, always_xy=True)
        sx, sy = shape[1] / ref.width, shape[0] / ref.height
        overlay = Image.fromarray((after * 0.6).astype(np.uint8))
        draw = ImageDraw.Draw(overlay)
        for feat in truth:
            p, g = feat["properties"], feat["geometry"]
            colour = STATUS_COLOURS[p["status"]]
            coords = np.atleast_2d(np.asarray(g["coordinates"], dtype=np.float64))
            x, y = tf.transform(coords[:, 0], coords[:, 1])
            col, row = inv @ (np.asarray(x), np.asarray(y))
            pts = list(zip((np.asarray(col) * sx).tolist(), (np.asarray(row) * sy).tolist()))
            if g["type"] == "Point":
                cx, cy = pts[0]
                draw.rectangle([cx - 2, cy - 2, cx + 2, cy + 2], outline=colour)
            else:
                draw.line(pts, fill=colour, width=1 if p["class"] == "fence" else 2)
    gap = (
        np.full((shape[0], 6, 3), 255, np.uint8)
        if shape[1] <= shape[0]
        else np.full((6, shape[1], 3), 255, np.uint8)
    )
    axis = 1 if shape[1] <= shape[0] else 0
    panel = np.concatenate([before, gap, after, gap, np.asarray(overlay)], axis=axis)
    with atomic_path(files.quicklook) as tmp:
        Image.fromarray(panel).save(tmp, format="PNG", compress_level=4)


def pair_quicklook(pair: Any, path: Any) -> None:
    """Write a before | after | truth-over-after PNG of an in-memory :class:`SynthPair`."""
    rgb = [
        (np.clip(a[:3].transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)
        for a in (pair.before, pair.after)
    ]
    overlay = Image.fromarray((rgb[1] * 0.6).astype(np.uint8))
    draw = ImageDraw.Draw(overlay)
    for t in pair.truth:
        colour = STATUS_COLOURS[t.status]
        g = t.geometry
        if g.geom_type == "Point":
            r = max(2.0, t.width_m / pair.gsd_m)
            draw.rectangle([g.x - r, g.y - r, g.x + r, g.y + r], outline=colour)
        else:
            draw.line(list(g.coords), fill=colour, width=1 if t.cls == "fence" else 2)
    gap = np.full((rgb[0].shape[0], 6, 3), 255, np.uint8)
    panel = np.concatenate([rgb[0], gap, rgb[1], gap, np.asarray(overlay)], axis=1)
    with atomic_path(path) as tmp:
        Image.fromarray(panel).quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        ).save(tmp, format="PNG", compress_level=9)
