"""Imagery epochs: open rasters of any CRS/resolution/bands/bit depth, read a tile's window.

OWNER: imagery helper (issue 4). :class:`TilePair` is a shared contract used by ``align.py``,
``detect/`` and ``pipeline.py``; extend it only by adding fields with defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bordewatch.tiling import Tile

__all__ = ["TilePair"]


@dataclass(frozen=True, slots=True)
class TilePair:
    """Before and after pixels of one tile on the tile grid, scaled to float32 0–1.

    Attributes
    ----------
    tile : Tile
    before, after : ndarray of float32, shape (band, row, col)
        Reflectance-like values 0–1 in the common bands, in the order of ``bands``.
    valid : ndarray of bool, shape (row, col)
        True where both epochs hold valid data (not nodata, not cloud) inside the tile grid.
    bands : tuple of str
        Band names, e.g. ``("red", "green", "blue", "nir")``.
    shift_px : tuple of float
        Co-registration shift (row, col) already applied to ``after``.
    shift_quality : float
        0–1 reliability of the shift (0: not estimated).
    """

    tile: Tile
    before: npt.NDArray[np.float32]
    after: npt.NDArray[np.float32]
    valid: npt.NDArray[np.bool_]
    bands: tuple[str, ...]
    shift_px: tuple[float, float] = (0.0, 0.0)
    shift_quality: float = 0.0

    def __post_init__(self) -> None:
        if self.before.ndim != 3 or self.before.shape != self.after.shape:
            raise ValueError(
                f"before {self.before.shape} and after {self.after.shape} must both be (band, row, col)"
            )
        if self.valid.shape != self.before.shape[1:]:
            raise ValueError(f"valid {self.valid.shape} must be (row, col) = {self.before.shape[1:]}")
        if len(self.bands) != self.before.shape[0]:
            raise ValueError(f"{len(self.bands)} band names for {self.before.shape[0]} bands")

    @property
    def gsd_m(self) -> float:
        """Pixel size of the tile grid, metres."""
        return self.tile.gsd_m
