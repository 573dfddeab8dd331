"""Plain data describing one synthetic scene: what exists where, and how each epoch was imaged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from bordewatch.synth.frame import Frame
from bordewatch.synth.splat import Splats

__all__ = ["EpochParams", "ScenePlan", "TruthObject"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class TruthObject:
    """One ground-truth object.

    Attributes
    ----------
    cls : str
        ``"fence"``, ``"patrol_lane"`` or ``"watchtower"``.
    status : str
        ``"new"``, ``"existing"``, ``"removed"`` or ``"upgraded"``.
    geometry : shapely geometry
        LineString (lines) or Point (towers); world metres in a plan, pixel coordinates
        (x = col, y = row) in a :class:`~bordewatch.synth.SynthPair`.
    observable : bool
        False where clouds or nodata hide it in either epoch.
    width_m : float
        Fence / wall thickness, lane width, or tower footprint size.
    kind_before, kind_after : str
        What was drawn in each epoch (``"wire"``, ``"wall"``, ``"lane"``, ``"tower"`` or ``""``).
    """

    cls: str
    status: str
    geometry: shapely.Geometry
    observable: bool = True
    width_m: float = 0.0
    kind_before: str = ""
    kind_after: str = ""


@dataclass(frozen=True, slots=True)
class EpochParams:
    """How one epoch was imaged (all drawn from the preset's ranges)."""

    name: str
    season: float
    snow: float
    sun_azimuth_deg: float
    sun_elevation_deg: float
    gain: tuple[float, ...]
    offset: tuple[float, ...]
    river_level: float
    shift_m: tuple[float, float]
    noise_sigma: float
    blur_sigma_px: float
    haze: float
    cloud_cover: float
    crop_salt: int
    collar: tuple[float, float, float] | None = (
        None  # unit normal (x, y) and threshold: nodata beyond
    )

    @property
    def shadow_vec(self) -> F64:
        """Shadow displacement per metre of object height (x east, y north)."""
        az = np.radians(self.sun_azimuth_deg)
        k = 1.0 / np.tan(np.radians(self.sun_elevation_deg))
        return np.array([-np.sin(az) * k, -np.cos(az) * k])


@dataclass(frozen=True, slots=True)
class ScenePlan:
    """Everything needed to render any block of either epoch of one scene."""

    seed: int
    gsd: float
    bounds: tuple[float, float, float, float]
    frame: Frame
    river_c: F64
    river_w: F64
    bank_w: F64
    prk_sign: float
    hill_height_m: float
    forest_bias: float
    districts: dict[str, F64]
    epochs: tuple[EpochParams, EpochParams]
    splats: tuple[dict[str, Splats], dict[str, Splats]]
    villages: F64
    truth: tuple[TruthObject, ...]
    params: dict[str, Any] = field(default_factory=dict)
