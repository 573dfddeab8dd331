"""Detection: one entry point, :func:`detect_tile`, and a registry of methods.

A method is a callable ``(pair: TilePair, config: DetectConfig) -> DetectorOutput``. The
classical method is registered here; others (``"model"``, ``"hybrid"``) register themselves with
:func:`register_method`. This package never imports rasterio or geopandas.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bordewatch.errors import UnknownMethodError
from bordewatch.results import DetectConfig, DetectorOutput

if TYPE_CHECKING:
    from bordewatch.imagery import TilePair

__all__ = ["METHODS", "DetectFn", "detect_tile", "register_method"]

DetectFn = Callable[["TilePair", DetectConfig], DetectorOutput]

METHODS: dict[str, DetectFn] = {}


def register_method(name: str, fn: DetectFn) -> None:
    """Register (or replace) a detection method under ``name``."""
    METHODS[name] = fn


def detect_tile(pair: TilePair, config: DetectConfig) -> DetectorOutput:
    """Run the configured detection method on one tile pair.

    Parameters
    ----------
    pair : TilePair
    config : DetectConfig

    Returns
    -------
    DetectorOutput

    Raises
    ------
    UnknownMethodError
        If ``config.method`` is not registered.
    """
    try:
        fn = METHODS[config.method]
    except KeyError:
        names = ", ".join(sorted(METHODS)) or "none"
        raise UnknownMethodError(
            f"unknown detection method {config.method!r}; registered methods: {names}"
        ) from None
    return fn(pair, config)


def _register_builtin() -> None:
    from bordewatch.detect.classical import detect_classical

    register_method("classical", detect_classical)
    from bordewatch.detect import hybrid, model  # noqa: F401  (registers "model" and "hybrid")


_register_builtin()
