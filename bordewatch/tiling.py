"""Tiles along the border: pure geometry, never reads pixels.

OWNER: tiling helper (issue 4). The :class:`Tile` dataclass below is a shared contract: other
modules depend on its fields; extend it only by adding fields with defaults.

How a plan is made (:func:`plan_tiles`)
--------------------------------------
* The km range is cut into pieces of ``tile_km`` of geodesic chainage (the last may be shorter).
* Each piece is worked in the UTM zone of its middle (``Border.utm_crs``).
* Its *core* is the part of the corridor (within ``corridor_m`` of the border) whose nearest
  border point lies on the piece. It is built from a Voronoi partition of points sampled every
  ~20 m along the line (two extra points a centimetre either side of each km end make the cut
  the perpendicular at that km point), so cores of neighbouring tiles never overlap and together
  cover the corridor, also where the river meanders back on itself.
* The grid is the core's minimum rotated rectangle (turned so that columns run along the border)
  plus ``overlap_m`` on every side, so pixels per km stay well under 2x the corridor area even
  where the border runs diagonally.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pyproj
import shapely
import shapely.ops
from affine import Affine

from bordewatch.border import Border
from bordewatch.errors import ImageryError, TileError

if TYPE_CHECKING:
    from bordewatch.imagery import Epoch

__all__ = [
    "Tile",
    "check_overlap",
    "plan_tiles",
    "tile_count",
    "tile_coverage",
    "tile_footprint_lonlat",
    "tiles_frame",
]

_SAMPLE_M = 25.0  # spacing of the line samples behind the Voronoi partition
_EPS_M = 0.01  # the two samples either side of a km end, metres from it


@dataclass(frozen=True, slots=True)
class Tile:
    """One processing tile: a km (or ``tile_km``) of border and its corridor, on a pixel grid.

    The grid is in the local UTM CRS and may be *rotated* so that its rows run along the border
    (that keeps the pixels read per km of border near the corridor area where the border runs
    diagonally). ``transform`` maps pixel (col, row) to tile-CRS (x, y), rotation included.

    Attributes
    ----------
    id : str
        Stable id, ``f"{border_name}-{km_start:08.3f}"``.
    index : int
        Position along the border in this plan (0-based).
    km_start, km_end : float
        The border chainage this tile is responsible for.
    crs : str
        The tile CRS as ``"EPSG:326xx"`` (UTM, WGS84).
    transform : tuple of 6 floats
        Affine coefficients ``(a, b, c, d, e, f)`` of the tile grid (``Affine(*transform)``).
    width, height : int
        Grid size in pixels, the overlap margin included.
    gsd_m : float
        Pixel size, metres.
    core : shapely.Polygon
        The corridor area this tile alone is responsible for, in the tile CRS. Cores of
        neighbouring tiles do not overlap and together cover the corridor; the grid extends an
        overlap margin beyond the core so objects on the edge are seen whole.
    """

    id: str
    index: int
    km_start: float
    km_end: float
    crs: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int
    gsd_m: float
    core: shapely.Polygon

    @property
    def affine(self) -> Affine:
        """The grid's affine transform."""
        return Affine(*self.transform)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return (self.height, self.width)

    @property
    def latitude(self) -> float:
        """Latitude (degrees) of the grid's centre."""
        x, y = self.affine @ (self.width / 2, self.height / 2)
        tf = pyproj.Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
        return float(tf.transform(x, y)[1])


# ---------------------------------------------------------------------- planning
@dataclass(frozen=True, slots=True)
class _ZoneLine:
    """The whole border in one UTM zone, sampled for the Voronoi partition."""

    crs: pyproj.CRS
    line: shapely.LineString
    samples: npt.NDArray[np.float64]  # planar distance along ``line`` of each sample, metres
    tree: shapely.STRtree
    to_utm: pyproj.Transformer
    vertex_m: npt.NDArray[np.float64]  # planar distance along ``line`` of each vertex
    xy: npt.NDArray[np.float64]  # the line's vertices

    def points_at(self, dist: npt.NDArray[np.float64]) -> npt.NDArray[np.object_]:
        """Points at planar distances along the line (vectorised, O(log n) each)."""
        x = np.interp(dist, self.vertex_m, self.xy[:, 0])
        y = np.interp(dist, self.vertex_m, self.xy[:, 1])
        return shapely.points(x, y)


def _zone_line(border: Border, crs: pyproj.CRS) -> _ZoneLine:
    line = border.line_in(crs)
    xy = shapely.get_coordinates(line)
    vertex_m = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    dist = np.arange(0.0, line.length, _SAMPLE_M)
    zone = _ZoneLine(crs, line, dist, shapely.STRtree([]), to_utm, vertex_m, xy)
    return _ZoneLine(crs, line, dist, shapely.STRtree(zone.points_at(dist)), to_utm, vertex_m, xy)


def plan_tiles(
    border: Border,
    *,
    km_range: tuple[float, float] | None = None,
    corridor_m: float = 1000.0,
    side: Literal["left", "right", "both"] = "both",
    tile_km: float = 1.0,
    gsd_m: float = 1.0,
    overlap_m: float = 50.0,
) -> list[Tile]:
    """Plan tiles along the border, one per ``tile_km`` of chainage.

    Parameters
    ----------
    border : Border
    km_range : (float, float), optional
        Chainage range in km (default: the whole line).
    corridor_m : float
        Half-width of the corridor around the border, metres.
    side : {"left", "right", "both"}
        Which side of the line (relative to its direction) the corridor covers.
    tile_km : float
        Border length per tile, km.
    gsd_m : float
        Pixel size of the tile grids, metres.
    overlap_m : float
        Margin of the grid beyond the core, metres.

    Returns
    -------
    list of Tile
        In chainage order; contiguous km ranges covering ``km_range``.

    Raises
    ------
    TileError
        Non-positive sizes, an unknown side or an empty km range.
    """
    _check_plan_args(corridor_m, side, tile_km, gsd_m, overlap_m)
    start, end = _clipped_range(border, km_range)
    if end <= start:
        raise TileError(f"empty km range {start:g}:{end:g} on border {border.name!r}")
    n = tile_count(border, km_range=km_range, tile_km=tile_km)
    edges = np.minimum(start + tile_km * np.arange(n + 1), end)
    edges[-1] = end
    zones: dict[str, _ZoneLine] = {}
    tiles = []
    for i, (a, b) in enumerate(zip(edges[:-1].tolist(), edges[1:].tolist())):
        crs = border.utm_crs(a, b)
        key = crs.to_string()
        if key not in zones:
            zones[key] = _zone_line(border, crs)
        core = _core(border, zones[key], a, b, corridor_m, side)
        transform, width, height = _grid(core, zones[key], border, a, b, gsd_m, overlap_m)
        tiles.append(
            Tile(
                id=f"{border.name}-{a:08.3f}",
                index=i,
                km_start=a,
                km_end=b,
                crs=key,
                transform=transform,
                width=width,
                height=height,
                gsd_m=float(gsd_m),
                core=core,
            )
        )
    return tiles


def tile_count(
    border: Border, *, km_range: tuple[float, float] | None = None, tile_km: float = 1.0
) -> int:
    """How many tiles :func:`plan_tiles` plans for these arguments (0 for an empty range).

    Known before any imagery is opened: the pipeline starts its workers from it.

    Examples
    --------
    >>> from bordewatch.border import default_border
    >>> tile_count(default_border(), km_range=(815.0, 818.5))
    4
    """
    start, end = _clipped_range(border, km_range)
    if end <= start or not (math.isfinite(tile_km) and tile_km > 0):
        return 0
    return max(1, math.ceil((end - start) / tile_km - 1e-9))


def _clipped_range(border: Border, km_range: tuple[float, float] | None) -> tuple[float, float]:
    start, end = km_range if km_range is not None else (0.0, border.length_km)
    return max(0.0, float(start)), min(border.length_km, float(end))


def _check_plan_args(
    corridor_m: float, side: str, tile_km: float, gsd_m: float, overlap_m: float
) -> None:
    if side not in ("left", "right", "both"):
        raise TileError(f"side must be left, right or both, got {side!r}")
    for name, value in (("corridor_m", corridor_m), ("tile_km", tile_km), ("gsd_m", gsd_m)):
        if not (math.isfinite(value) and value > 0):
            raise TileError(f"{name} must be a positive number, got {value!r}")
    if not (math.isfinite(overlap_m) and overlap_m >= 0):
        raise TileError(f"overlap_m must be zero or positive, got {overlap_m!r}")


def _planar_positions(border: Border, zone: _ZoneLine, kms: Sequence[float]) -> list[float]:
    lon, lat = border.point_at(list(kms))
    x, y = zone.to_utm.transform(lon, lat)
    return shapely.line_locate_point(zone.line, shapely.points(x, y)).tolist()


def _core(
    border: Border, zone: _ZoneLine, km_a: float, km_b: float, corridor_m: float, side: str
) -> shapely.Polygon:
    """The corridor area whose nearest border point lies between ``km_a`` and ``km_b``."""
    sa, sb = _planar_positions(border, zone, [km_a, km_b])
    piece = shapely.ops.substring(zone.line, sa, sb)
    near = zone.tree.query(piece, predicate="dwithin", distance=2.0 * corridor_m + _SAMPLE_M)
    dist = zone.samples[near]
    extra = np.array([sa - _EPS_M, sa + _EPS_M, sb - _EPS_M, sb + _EPS_M])
    extra = extra[(extra > 0.0) & (extra < zone.line.length)]
    dist = np.unique(np.concatenate([dist, extra]))
    points = zone.points_at(dist)
    owned = (dist >= sa) & (dist <= sb)
    if not owned.any():  # a piece shorter than the sample spacing
        owned = np.abs(dist - 0.5 * (sa + sb)) == np.abs(dist - 0.5 * (sa + sb)).min()
    region = shapely.buffer(piece, 3.0 * corridor_m)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(points), extend_to=region, ordered=True)
    )
    mine = shapely.union_all(cells[owned])
    if side == "both":
        band = shapely.buffer(piece, corridor_m, quad_segs=16)
    else:
        signed = corridor_m if side == "left" else -corridor_m
        band = shapely.buffer(piece, signed, single_sided=True, quad_segs=16)
    core = shapely.intersection(mine, band)
    return _clean_core(core, border, km_a, km_b)


def _clean_core(
    core: shapely.Geometry, border: Border, km_a: float, km_b: float
) -> shapely.Polygon:
    """Drop slivers (lines, points, specks) left by the overlay; keep a Polygon where possible."""
    parts = sorted(
        (p for p in shapely.get_parts(core) if p.geom_type == "Polygon" and p.area > 1e-3),
        key=lambda p: -p.area,
    )
    if not parts:
        raise TileError(f"empty corridor for km {km_a:g}:{km_b:g} on border {border.name!r}")
    if len(parts) == 1 or sum(p.area for p in parts[1:]) < 1e-4 * parts[0].area:
        return parts[0]
    return shapely.MultiPolygon(parts)


def _grid(
    core: shapely.Geometry,
    zone: _ZoneLine,
    border: Border,
    km_a: float,
    km_b: float,
    gsd_m: float,
    overlap_m: float,
) -> tuple[tuple[float, float, float, float, float, float], int, int]:
    """A grid over the core's minimum rotated rectangle, columns along the border, plus margin."""
    lon, lat = border.point_at([km_a, km_b])
    x, y = zone.to_utm.transform(lon, lat)
    chord = math.atan2(y[1] - y[0], x[1] - x[0])
    rect = shapely.get_coordinates(shapely.oriented_envelope(core))
    edge = rect[1] - rect[0] if len(rect) >= 2 else np.array([1.0, 0.0])
    alpha = math.atan2(edge[1], edge[0]) if np.any(edge) else 0.0
    options = [alpha + k * math.pi / 2.0 for k in range(4)]
    theta = min(options, key=lambda t: abs(math.remainder(t - chord, 2.0 * math.pi)))
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    xy = shapely.get_coordinates(core)
    u = xy[:, 0] * cos_t + xy[:, 1] * sin_t  # along the border
    v = -xy[:, 0] * sin_t + xy[:, 1] * cos_t  # to the left of it
    u0, u1 = u.min() - overlap_m, u.max() + overlap_m
    v0, v1 = v.min() - overlap_m, v.max() + overlap_m
    width = max(1, math.ceil((u1 - u0) / gsd_m - 1e-6))
    height = max(1, math.ceil((v1 - v0) / gsd_m - 1e-6))
    ox, oy = u0 * cos_t - v1 * sin_t, u0 * sin_t + v1 * cos_t  # pixel (0, 0): u0, v1
    g = float(gsd_m)
    transform = (g * cos_t, g * sin_t, ox, g * sin_t, -g * cos_t, oy)
    return tuple(float(round(c, 9)) for c in transform), width, height  # type: ignore[return-value]


# ---------------------------------------------------------------------- geometry helpers
def _to_lonlat(geom: shapely.Geometry, crs: str) -> shapely.Geometry:
    tf = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    dense = shapely.segmentize(geom, 100.0)
    return shapely.transform(dense, lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1])))


def _from_lonlat(geom: shapely.Geometry, crs: str) -> shapely.Geometry:
    tf = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1])))


def tile_footprint_lonlat(tile: Tile) -> shapely.Polygon:
    """The tile grid's outline (overlap margin included) in lon/lat."""
    aff = tile.affine
    corners = [aff @ (0, 0), aff @ (tile.width, 0), aff @ (tile.width, tile.height)]
    corners.append(aff @ (0, tile.height))
    return _to_lonlat(shapely.Polygon(corners), tile.crs)


# ---------------------------------------------------------------------- coverage
def tile_coverage(tiles: Sequence[Tile], before: Epoch, after: Epoch) -> list[float]:
    """Fraction (0–1) of each tile's core covered by valid data of both epochs.

    Geometric and cheap: uses the epochs' footprints (valid-data polygons), never pixels.
    """
    from bordewatch.imagery import epoch_footprint_near

    out = []
    for tile in tiles:
        core_ll = _to_lonlat(tile.core, tile.crs)
        both = shapely.intersection(
            epoch_footprint_near(before, core_ll), epoch_footprint_near(after, core_ll)
        )
        covered = shapely.intersection(core_ll, both)
        if covered.is_empty or tile.core.area <= 0:
            out.append(0.0)
            continue
        area = shapely.area(_from_lonlat(covered, tile.crs))
        out.append(float(min(1.0, round(area / tile.core.area, 6))))
    return out


def tiles_frame(tiles: Sequence[Tile], coverage: Sequence[float] | None = None) -> gpd.GeoDataFrame:
    """The plan as a GeoDataFrame of core polygons in EPSG:4326 (for ``tiles.geojson``/GPKG).

    Columns: ``id``, ``km_start``, ``km_end``, ``crs``, ``gsd_m``, ``width``, ``height``,
    ``coverage`` (NaN where not given).
    """
    if coverage is not None and len(coverage) != len(tiles):
        raise TileError(f"{len(coverage)} coverage values for {len(tiles)} tiles")
    cov = list(coverage) if coverage is not None else [float("nan")] * len(tiles)
    return gpd.GeoDataFrame(
        {
            "id": [t.id for t in tiles],
            "km_start": [round(t.km_start, 6) for t in tiles],
            "km_end": [round(t.km_end, 6) for t in tiles],
            "crs": [t.crs for t in tiles],
            "gsd_m": [t.gsd_m for t in tiles],
            "width": [t.width for t in tiles],
            "height": [t.height for t in tiles],
            "coverage": [float(c) for c in cov],
        },
        geometry=[_to_lonlat(t.core, t.crs) for t in tiles],
        crs="EPSG:4326",
    )


def check_overlap(coverage: Sequence[float], before: Epoch, after: Epoch, border: Border) -> None:
    """Raise :class:`ImageryError` when no tile has any before-and-after coverage.

    The message lists each file's footprint centroid and the nearest border km, so the user can
    see whether the imagery is elsewhere on the border, off it, or the epochs miss each other.
    """
    if any(c > 0.0 for c in coverage):
        return
    lines = []
    for epoch in (before, after):
        for src in epoch.sources:
            c = src.footprint.centroid
            km, off, _ = border.locate([c.x], [c.y])
            lines.append(
                f"{epoch.name} {src.path}: centre {c.y:.5f}N {c.x:.5f}E, nearest border km "
                f"{km[0]:.1f} at {abs(off[0]) / 1000.0:.1f} km"
            )
    raise ImageryError(
        "the before and after imagery do not both cover any of the corridor: " + "; ".join(lines)
    )
