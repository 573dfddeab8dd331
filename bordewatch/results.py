"""What detection produces per tile: typed values passed from the detectors to the merge stage.

Shared contract between ``detect/``, ``vectorize.py``, ``pipeline.py`` and ``outputs.py``.
Geometries are shapely objects in the *tile* CRS (metres); they are small and pickle cheaply, so
a :class:`TileResult` is what a Dask task returns and what the resume cache stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import shapely

__all__ = ["DetectConfig", "Detection", "DetectorOutput", "TileResult"]

Method = Literal["classical", "model", "hybrid"]


@dataclass(frozen=True, slots=True)
class DetectConfig:
    """Parameters of the detectors (every field is recorded in run.json).

    Attributes
    ----------
    method : str
        Registered detection method: ``"classical"``, ``"model"`` or ``"hybrid"``.
    sun_azimuth_deg : float or None
        Sun azimuth (degrees clockwise from north) for both epochs; ``None`` estimates it per epoch.
    min_fence_length_m : float
        Line detections shorter than this are dropped.
    model_path : str or None
        Weight file for the learned method (default: the shipped ``models/`` file).
    device : str
        torch device for the learned method (``"cpu"`` or ``"cuda"``).
    """

    method: Method = "classical"
    sun_azimuth_deg: float | None = None
    min_fence_length_m: float = 30.0
    model_path: str | None = None
    device: str = "cpu"


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object in the tile CRS.

    Attributes
    ----------
    cls : {"fence", "patrol_lane", "watchtower"}
    status : {"new", "existing", "removed", "upgraded"}
    score : float
        Confidence 0–1.
    geometry : shapely geometry
        ``Point`` for watchtowers, ``LineString``/``MultiLineString`` for lines; tile CRS.
    """

    cls: str
    status: str
    score: float
    geometry: shapely.Geometry


@dataclass(frozen=True, slots=True)
class DetectorOutput:
    """What ``detect_tile`` returns: detections in the tile CRS and a per-pixel change score.

    ``change`` is float32 ``(row, col)`` on the tile grid, 0–1, NaN where not both epochs are valid.
    """

    detections: tuple[Detection, ...]
    change: npt.NDArray[np.float32]
    sun_azimuth_deg: tuple[float | None, float | None] = (None, None)


@dataclass(frozen=True, slots=True)
class TileResult:
    """The small, picklable result of one tile (what a Dask task returns and the cache stores).

    Attributes
    ----------
    tile_id : str
    crs : str
        The tile CRS (``"EPSG:326xx"``).
    method : str
    detections : tuple of Detection
        In the tile CRS, restricted to the tile's core where the merge needs it.
    analysed : shapely geometry
        The part of the tile's core with valid before *and* after pixels (tile CRS).
    analysed_fraction : float
        ``analysed.area / core.area``.
    shift_px : tuple of float
        Co-registration shift (row, col) applied to *after*.
    shift_quality : float
        0–1 reliability of that shift.
    change_path : str or None
        Where the worker wrote the tile's change-score raster (inside the run's cache).
    seconds : float
        Wall time spent on the tile.
    error : str or None
        Why the tile failed (then ``detections`` is empty).
    info : dict
        Small extra facts for run.json (sun azimuths, band scaling, ...).
    """

    tile_id: str
    crs: str
    method: str
    detections: tuple[Detection, ...]
    analysed: shapely.Geometry
    analysed_fraction: float
    shift_px: tuple[float, float] = (0.0, 0.0)
    shift_quality: float = 0.0
    change_path: str | None = None
    seconds: float = 0.0
    error: str | None = None
    info: dict[str, object] = field(default_factory=dict)
