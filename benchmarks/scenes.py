"""Synthetic benchmark imagery: tiled, DEFLATE-compressed 4-band uint16 (12-bit values) GeoTIFFs written by blocks.

Pixels are a deterministic function of the block position and seed (smooth terrain-like
gradients, fields, sensor noise), so before/after line up exactly and any scene size can be
written in bounded memory. *After* adds a radiometric gain, dark fence-like lines parallel to
the grid every 150 m and bright 4 m "posts" every 60 m along them. Blocks outside ``dense``
(a polygon in the scene CRS) are left unwritten (GeoTIFF SPARSE_OK): they are never read by a
tile task, and skipping them keeps writing a scene 20× the demo cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.transform import from_origin
from rasterio.windows import Window

__all__ = ["write_scene"]

BLOCK = 512


def _block_pixels(
    x0: float, y0: float, gsd: float, shape: tuple[int, int], *, seed: int, after: bool
) -> np.ndarray:
    rows, cols = shape
    x = x0 + (np.arange(cols, dtype=np.float32) + 0.5) * gsd
    y = y0 - (np.arange(rows, dtype=np.float32) + 0.5) * gsd
    xx, yy = np.meshgrid(x, y)
    terrain = 600 + 250 * np.sin(xx / 311.0) * np.cos(yy / 257.0) + 120 * np.sin((xx + yy) / 83.0)
    fields = 150 * ((np.floor(xx / 120.0) + np.floor(yy / 90.0)) % 3)
    bx, by = int(x0 // (BLOCK * gsd)), int(y0 // (BLOCK * gsd))
    rng = np.random.default_rng([seed, bx & 0xFFFF, by & 0xFFFF])
    noise = rng.normal(0.0, 25.0, (4, rows, cols)).astype(np.float32)
    gains = np.array([1.0, 1.05, 0.95, 1.3], np.float32)[:, None, None]
    img = (terrain + fields)[None] * gains + noise
    if after:
        img *= 1.04
        fence = (np.abs((xx % 150.0) - 75.0) < max(gsd, 0.75))[None]
        img = np.where(fence, img * 0.45, img)
        post = ((np.abs((xx % 150.0) - 79.0) < 2.0) & ((yy % 60.0) < 4.0))[None]
        img = np.where(post, 2600.0, img)
    return np.clip(img, 1, 4095).astype(np.uint16)


def write_scene(
    path: Path,
    *,
    crs: str,
    bounds: tuple[float, float, float, float],
    gsd_m: float,
    after: bool,
    dense: shapely.Geometry | None = None,
    seed: int = 0,
) -> Path:
    """Write one epoch over ``bounds`` (scene CRS, metres) at ``gsd_m``; return the path."""
    x0, y0, x1, y1 = bounds
    width, height = int(np.ceil((x1 - x0) / gsd_m)), int(np.ceil((y1 - y0) / gsd_m))
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 4,
        "dtype": "uint16",
        "crs": crs,
        "transform": from_origin(x0, y1, gsd_m, gsd_m),
        "nodata": 0,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "deflate",
        "sparse_ok": True,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, height, BLOCK):
            for col in range(0, width, BLOCK):
                h, w = min(BLOCK, height - row), min(BLOCK, width - col)
                bx0, by0 = x0 + col * gsd_m, y1 - row * gsd_m
                if dense is not None and not dense.intersects(
                    shapely.box(bx0, by0 - h * gsd_m, bx0 + w * gsd_m, by0)
                ):
                    continue
                data = _block_pixels(bx0, by0, gsd_m, (h, w), seed=seed, after=after)
                dst.write(data, window=Window(col, row, w, h))
    return path
