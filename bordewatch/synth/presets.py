"""Scene presets: named parameter ranges for :func:`bordewatch.synth.render_pair` and ``make_scene``.

Every number a scene uses is drawn from these ranges with the scene's ``rng`` and recorded in the
scene's ``params``; a preset only fixes the ranges and the infrastructure programme.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bordewatch.errors import BordewatchError

__all__ = ["PRESETS", "QUIET", "Preset", "get_preset"]

Range = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Preset:
    """Parameter ranges of one scene family (all distances in metres, angles in degrees)."""

    name: str
    km_range: tuple[float, float] = (815.0, 825.0)
    gsd_m: float = 1.0
    # geography
    river_width_m: Range = (40.0, 250.0)
    meander_amp_m: Range = (40.0, 300.0)
    hill_height_m: Range = (40.0, 160.0)
    forest_bias: Range = (-0.05, 0.1)
    n_villages_per_km: Range = (0.4, 1.2)
    n_roads_per_km: Range = (0.8, 2.0)
    # infrastructure programme
    fenced_before: Range = (0.5, 0.85)
    layers_after: tuple[int, int] = (1, 3)
    layer_gap_m: Range = (15.0, 400.0)
    bank_setback_m: Range = (5.0, 60.0)
    layer_cover: Range = (0.6, 1.0)
    wall_frac_before: Range = (0.2, 0.2)
    upgrade_frac: Range = (0.2, 0.5)
    remove_frac: Range = (0.0, 0.06)
    wall_frac_new: Range = (0.1, 0.4)
    lane_frac_before: Range = (0.2, 0.6)
    tower_spacing_before_m: Range = (700.0, 1500.0)
    tower_spacing_after_m: Range = (80.0, 300.0)
    n_towers_before: int | None = None
    n_towers_new: int | None = None
    fence_contrast: Range = (0.8, 1.2)
    nothing_new: bool = False
    # nuisance
    season_before: Range = (0.0, 0.6)
    season_after: Range = (0.0, 0.6)
    snow_after_prob: float = 0.0
    gain: Range = (0.85, 1.15)
    offset: Range = (-0.04, 0.04)
    colour_shift: Range = (-0.04, 0.04)
    sun_azimuth_deg: Range = (120.0, 220.0)
    sun_elevation_deg: Range = (25.0, 65.0)
    crop_change_frac: Range = (0.2, 0.6)
    new_house_frac: Range = (0.03, 0.15)
    river_level: Range = (0.85, 1.1)
    misreg_px: Range = (0.0, 3.0)
    noise_sigma: Range = (0.004, 0.015)
    blur_sigma_px: Range = (0.35, 0.75)
    haze: Range = (0.0, 0.08)
    cloud_prob: float = 0.35
    cloud_cover: Range = (0.02, 0.15)
    collar_prob: float = 0.3


QUIET = {
    "season_before": (0.2, 0.2),
    "season_after": (0.2, 0.2),
    "gain": (1.0, 1.0),
    "offset": (0.0, 0.0),
    "colour_shift": (0.0, 0.0),
    "sun_azimuth_deg": (150.0, 150.0),
    "sun_elevation_deg": (45.0, 45.0),
    "crop_change_frac": (0.0, 0.0),
    "new_house_frac": (0.0, 0.0),
    "river_level": (1.0, 1.0),
    "misreg_px": (0.0, 0.0),
    "noise_sigma": (0.0, 0.0),
    "haze": (0.0, 0.0),
    "blur_sigma_px": (0.5, 0.5),
    "cloud_prob": 0.0,
    "collar_prob": 0.0,
}
"""Overrides that switch every nuisance change off (tests, ablations): ``get_preset("demo", **QUIET)``."""

PRESETS: dict[str, Preset] = {
    "demo": Preset("demo"),
    "hoeryong": Preset(
        "hoeryong",
        km_range=(816.0, 823.4),
        fenced_before=(0.95, 1.0),
        layers_after=(3, 3),
        layer_cover=(0.6, 0.65),
        wall_frac_before=(0.0, 0.0),
        layer_gap_m=(15.0, 120.0),
        upgrade_frac=(0.9, 1.0),
        remove_frac=(0.0, 0.0),
        n_towers_before=5,
        n_towers_new=169,
    ),
    "hard": Preset(
        "hard",
        gsd_m=0.5,
        fence_contrast=(0.4, 0.6),
        season_before=(0.0, 0.2),
        season_after=(0.7, 1.0),
        snow_after_prob=0.5,
        gain=(0.75, 1.3),
        offset=(-0.06, 0.06),
        colour_shift=(-0.07, 0.07),
        crop_change_frac=(0.5, 0.9),
        misreg_px=(2.0, 2.0),
        haze=(0.03, 0.12),
        cloud_prob=0.7,
        cloud_cover=(0.05, 0.2),
        noise_sigma=(0.01, 0.025),
        blur_sigma_px=(0.6, 1.0),
    ),
    "nothing_new": Preset("nothing_new", nothing_new=True),
}


def get_preset(name: str | Preset, **overrides: object) -> Preset:
    """Return the preset called ``name`` (or ``name`` itself if a Preset), fields replaced.

    Raises
    ------
    BordewatchError
        If there is no such preset.
    """
    if isinstance(name, Preset):
        return replace(name, **overrides) if overrides else name  # type: ignore[arg-type]
    try:
        preset = PRESETS[name]
    except KeyError:
        raise BordewatchError(
            f"unknown synth preset {name!r}; choose one of {', '.join(PRESETS)}"
        ) from None
    return replace(preset, **overrides) if overrides else preset  # type: ignore[arg-type]
