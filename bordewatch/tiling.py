"""Tiles along the border: pure geometry, never reads pixels.

OWNER: tiling helper (issue 4). The :class:`Tile` dataclass below is a shared contract: other
modules depend on its fields; extend it only by adding fields with defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import shapely
from affine import Affine

__all__ = ["Tile", "plan_tiles"]


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


def plan_tiles(*args: object, **kwargs: object) -> list[Tile]:
    """Plan tiles along the border (implemented by the tiling helper; see issue 4)."""
    raise NotImplementedError
