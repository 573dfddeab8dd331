"""Type aliases shared across bordewatch."""

from __future__ import annotations

from os import PathLike
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "BBox",
    "BoolArray",
    "FloatArray",
    "InfraClass",
    "PathLikeStr",
    "SideOption",
    "Status",
]

BBox: TypeAlias = tuple[float, float, float, float]
PathLikeStr: TypeAlias = str | PathLike[str]
FloatArray: TypeAlias = npt.NDArray[np.float32]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
InfraClass: TypeAlias = Literal["fence", "patrol_lane", "watchtower"]
Status: TypeAlias = Literal["new", "existing", "removed", "upgraded"]
SideOption: TypeAlias = Literal["left", "right", "both"]

INFRA_CLASSES: tuple[str, ...] = ("fence", "patrol_lane", "watchtower")
STATUSES: tuple[str, ...] = ("new", "existing", "removed", "upgraded")
