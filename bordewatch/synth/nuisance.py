"""Nuisance change between epochs: illumination, season, sensor, haze, clouds, collars, shifts."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

from bordewatch.synth.noise import fbm_grid, fbm_points, smoothstep
from bordewatch.synth.plan import EpochParams
from bordewatch.synth.presets import Preset

__all__ = ["apply_radiometry", "cloud_grid", "cloud_points", "draw_epochs"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
CLOUD_CELLS = (1200.0, 500.0, 200.0, 80.0, 30.0)
CLOUD_HEIGHT_M = 1200.0
HAZE_COLOUR = np.array([0.72, 0.76, 0.84, 0.62], np.float32)
CLOUD_COLOUR = np.array([0.93, 0.94, 0.96, 0.9], np.float32)


def _u(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def draw_epochs(
    preset: Preset, rng: np.random.Generator, gsd: float, bounds: tuple[float, float, float, float]
) -> tuple[EpochParams, EpochParams]:
    """Draw the imaging conditions of the before and after epochs."""
    epochs = []
    for k, name in enumerate(("before", "after")):
        season = _u(rng, preset.season_before if k == 0 else preset.season_after)
        snow = _u(rng, (0.3, 0.9)) if k == 1 and rng.random() < preset.snow_after_prob else 0.0
        cloudy = rng.random() < preset.cloud_prob
        shift = (0.0, 0.0)
        if k == 1:
            mag = _u(rng, preset.misreg_px) * gsd
            ang = rng.uniform(0, 2 * np.pi)
            shift = (float(mag * np.cos(ang)), float(mag * np.sin(ang)))
        collar = None
        if rng.random() < preset.collar_prob:
            ang = rng.uniform(0, 2 * np.pi)
            nx, ny = np.cos(ang), np.sin(ang)
            xs = np.array([bounds[0], bounds[2]])
            ys = np.array([bounds[1], bounds[3]])
            proj = (xs[:, None] * nx + ys[None, :] * ny).ravel()
            thr = proj.max() - rng.uniform(0.03, 0.15) * (proj.max() - proj.min())
            collar = (float(nx), float(ny), float(thr))
        gain = 1.0 if k == 0 else _u(rng, preset.gain)
        shift_c = [_u(rng, preset.colour_shift) for _ in range(4)] if k else [0.0] * 4
        epochs.append(
            EpochParams(
                name=name,
                season=season,
                snow=snow,
                sun_azimuth_deg=_u(rng, preset.sun_azimuth_deg),
                sun_elevation_deg=_u(rng, preset.sun_elevation_deg),
                gain=tuple(gain * (1 + c) for c in shift_c),
                offset=tuple([_u(rng, preset.offset) if k else 0.0] * 4),
                river_level=_u(rng, preset.river_level) if k else 1.0,
                shift_m=shift,
                noise_sigma=_u(rng, preset.noise_sigma),
                blur_sigma_px=_u(rng, preset.blur_sigma_px),
                haze=_u(rng, preset.haze),
                cloud_cover=_u(rng, preset.cloud_cover) if cloudy else 0.0,
                crop_salt=1000 * k,
                collar=collar,
            )
        )
    return epochs[0], epochs[1]


def _threshold(cover: float) -> float:
    return 0.5 + 0.085 * float(ndtri(1.0 - cover))


def cloud_grid(xs: F64, ys: F64, epoch: EpochParams, seed: int) -> tuple[F32, F32]:
    """Cloud opacity and cloud-shadow strength (row, col) on a grid of world coordinates."""
    if epoch.cloud_cover <= 0:
        z = np.zeros((len(ys), len(xs)), np.float32)
        return z, z
    t = _threshold(epoch.cloud_cover)
    sv = epoch.shadow_vec * CLOUD_HEIGHT_M
    f = fbm_grid(xs, ys, CLOUD_CELLS, seed + 101 + epoch.crop_salt)
    g = fbm_grid(xs - sv[0], ys - sv[1], CLOUD_CELLS, seed + 101 + epoch.crop_salt)
    return smoothstep((f - t) / 0.05), smoothstep((g - t) / 0.05)


def cloud_points(x: F64, y: F64, epoch: EpochParams, seed: int) -> F32:
    """Cloud opacity at scattered points (the same field as :func:`cloud_grid`)."""
    if epoch.cloud_cover <= 0:
        return np.zeros(np.shape(x), np.float32)
    f = fbm_points(x, y, CLOUD_CELLS, seed + 101 + epoch.crop_salt)
    return smoothstep((f - _threshold(epoch.cloud_cover)) / 0.05)


def collar_grid(xs: F64, ys: F64, epoch: EpochParams) -> npt.NDArray[np.bool_]:
    """True where the epoch has image data (inside its footprint, outside the collar)."""
    if epoch.collar is None:
        return np.ones((len(ys), len(xs)), bool)
    nx, ny, thr = epoch.collar
    return (xs[None, :] * nx + ys[:, None] * ny) <= thr


def apply_radiometry(img: F32, xs: F64, ys: F64, epoch: EpochParams, seed: int) -> tuple[F32, F32]:
    """Gain/offset/colour shift, haze, clouds and cloud shadows; returns image and cloud opacity."""
    gain = np.asarray(epoch.gain, np.float32)[:, None, None]
    off = np.asarray(epoch.offset, np.float32)[:, None, None]
    img = img * gain + off
    if epoch.haze > 0:
        h = epoch.haze * (0.5 + fbm_grid(xs, ys, (3000.0, 900.0), seed + 71 + epoch.crop_salt))
        img = img * (1 - h)[None] + HAZE_COLOUR[:, None, None] * h[None]
    cloud, shadow = cloud_grid(xs, ys, epoch, seed)
    if epoch.cloud_cover > 0:
        img = img * (1 - 0.55 * shadow)[None]
        img = img * (1 - cloud)[None] + CLOUD_COLOUR[:, None, None] * cloud[None]
    return img.astype(np.float32), cloud
