"""Seeded synthetic tile pairs with planted fences, lanes and towers (pixel coordinates)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from scipy import ndimage
from skimage.draw import line_aa, polygon

from bordewatch.imagery import TilePair
from bordewatch.tiling import Tile


def make_tile(shape: tuple[int, int], gsd_m: float = 1.0, *, rotation_deg: float = 0.0) -> Tile:
    """A tile grid at an arbitrary UTM origin, north-up unless rotated."""
    from affine import Affine

    rows, cols = shape
    aff = Affine.translation(500_000.0, 4_600_000.0) @ Affine.rotation(rotation_deg)
    aff = aff @ Affine.scale(gsd_m, -gsd_m)
    corners = [aff @ (0, 0), aff @ (cols, 0), aff @ (cols, rows), aff @ (0, rows)]
    return Tile(
        id="t-00000.000",
        index=0,
        km_start=0.0,
        km_end=1.0,
        crs="EPSG:32652",
        transform=tuple(aff)[:6],
        width=cols,
        height=rows,
        gsd_m=gsd_m,
        core=shapely.Polygon(corners),
    )


def background(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Textured fields: smooth noise + fine noise + a few field edges, RGB (3, row, col)."""
    rows, cols = shape
    base = ndimage.gaussian_filter(rng.normal(size=shape), 12) * 6
    fields = np.zeros(shape)
    for _ in range(4):
        r0, c0 = rng.integers(0, rows), rng.integers(0, cols)
        fields[r0:, c0:] += rng.uniform(-0.04, 0.04)
    img = 0.35 + 0.05 * base + fields
    out = np.stack([img * k for k in (1.0, 1.05, 0.9)])
    out += rng.normal(scale=0.01, size=out.shape)
    return out.astype(np.float32)


def draw_line(img: np.ndarray, p0, p1, value: float, width: int = 1) -> None:
    """Blend a straight antialiased line of ``value`` into every band (rows/cols p0, p1)."""
    for k in range(width):
        rr, cc, val = line_aa(p0[0] + k, p0[1], p1[0] + k, p1[1])
        ok = (rr >= 0) & (rr < img.shape[1]) & (cc >= 0) & (cc < img.shape[2])
        rr, cc, val = rr[ok], cc[ok], val[ok].astype(np.float32)
        img[:, rr, cc] = img[:, rr, cc] * (1 - val) + value * val


def draw_strip(img: np.ndarray, p0, p1, width_px: float, value: float) -> None:
    """A uniform strip of ``width_px`` between p0 and p1 (rows, cols)."""
    d = np.array(p1, float) - np.array(p0, float)
    n = np.array([-d[1], d[0]]) / np.hypot(*d) * width_px / 2
    pts = np.array([p0 + n, p1 + n, p1 - n, p0 - n])
    rr, cc = polygon(pts[:, 0], pts[:, 1], img.shape[1:])
    img[:, rr, cc] = value


def draw_tower(img: np.ndarray, r: int, c: int, size: int, shadow_dir=(-1, 1)) -> None:
    """A bright square roof with a dark shadow offset along ``shadow_dir`` (drow, dcol).

    The default casts it to the north-east (a sun in the south-west, as north of the tropics).
    """
    sr, sc = shadow_dir
    for k in range(1, size + 2):
        img[:, r + sr * k : r + sr * k + size, c + sc * k : c + sc * k + size] *= 0.75
    img[:, r : r + size, c : c + size] = 0.75


def scene(rng: int = 0, shape=(384, 384)) -> tuple[np.ndarray, np.ndarray, dict]:
    """Before/after with: road + field edges (both), an existing fence, a new fence,
    a new lane, 3 new towers 50 px apart, 1 existing tower. Returns truth in pixel coords."""
    g = np.random.default_rng(rng)
    before = background(shape, g)
    after = before + g.normal(scale=0.01, size=before.shape).astype(np.float32)
    for img in (before, after):
        draw_strip(img, np.array([0.0, 300]), np.array([383.0, 340]), 7, 0.6)  # road
        draw_line(img, (40, 0), (60, 383), 0.12)  # existing dark fence
        draw_tower(img, 330, 60, 5)
    draw_line(after, (120, 0), (150, 383), 0.12)  # new fence
    draw_line(after, (160, 0), (190, 383), 0.12)  # new fence 10 m away, parallel
    draw_strip(after, np.array([220.0, 0]), np.array([250.0, 383]), 5, 0.62)  # new lane
    for c in (60, 110, 160):
        draw_tower(after, 280, c, 5)
    truth = {
        "existing_fence": shapely.LineString([(0, 40), (383, 60)]),
        "new_fences": [
            shapely.LineString([(0, 120), (383, 150)]),
            shapely.LineString([(0, 160), (383, 190)]),
        ],
        "new_lane": shapely.LineString([(0, 220), (383, 250)]),
        "road": shapely.LineString([(300, 0), (340, 383)]),
        "new_towers": [shapely.Point(c + 2, 282) for c in (60, 110, 160)],
        "existing_tower": shapely.Point(62, 332),
    }
    return np.clip(before, 0, 1), np.clip(after, 0, 1), truth


@pytest.fixture(scope="module")
def planted() -> tuple[TilePair, dict]:
    before, after, truth = scene(0)
    tile = make_tile(before.shape[1:], 1.0)
    pair = TilePair(tile, before, after, np.ones(before.shape[1:], bool), ("red", "green", "blue"))
    return pair, truth


def rgb_pair(before: np.ndarray, after: np.ndarray, gsd_m: float = 1.0) -> TilePair:
    """A fully valid RGB pair of drawn epochs, clipped to 0-1, on a north-up tile."""
    shape = before.shape[1:]
    return TilePair(
        make_tile(shape, gsd_m),
        np.clip(before, 0, 1),
        np.clip(after, 0, 1),
        np.ones(shape, bool),
        ("red", "green", "blue"),
    )


def to_pixels(pair: TilePair, geom: shapely.Geometry) -> shapely.Geometry:
    """A tile-CRS geometry in the pair's pixel coordinates (x=col, y=row, centres at integers)."""
    inv = ~pair.tile.affine
    return shapely.transform(geom, lambda xy: np.column_stack(inv @ (xy[:, 0], xy[:, 1])) - 0.5)
