"""Render one block of both epochs of a planned scene: land, river, objects, nuisance, sensor.

Everything that does not change between epochs (frame coordinates, parcel layout, textures,
terrain) is computed once per block; each epoch then applies its season, sun, crops, river level,
objects, radiometry, clouds, misregistration (a sub-pixel resampling of *after*), blur and noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from bordewatch.synth.frame import frame_sn
from bordewatch.synth.landcover import (
    colour,
    field_colours,
    field_layout,
    land_colours,
    land_layout,
)
from bordewatch.synth.noise import fbm_grid, noise_grid, smoothstep, upsample_linear
from bordewatch.synth.nuisance import apply_radiometry, collar_grid
from bordewatch.synth.plan import EpochParams, ScenePlan
from bordewatch.synth.splat import Grid, render_splats

__all__ = ["HALO_PX", "BlockImages", "render_block"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
HALO_PX = 8
PAINT_ORDER = ("road", "clear", "lane", "shade", "wire", "wall", "roof")  # "d_*": bookkeeping


@dataclass(frozen=True, slots=True)
class BlockImages:
    """Both epochs of one block: images (4, row, col) 0–1, data masks, cloud opacities."""

    before: F32
    after: F32
    present: tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]
    cloud: tuple[F32, F32]

    @property
    def valid(self) -> npt.NDArray[np.bool_]:
        """Data in both epochs and no cloud in either."""
        return self.present[0] & self.present[1] & (self.cloud[0] < 0.3) & (self.cloud[1] < 0.3)


def render_block(plan: ScenePlan, grid: Grid) -> BlockImages:
    """Render both epochs of ``plan`` on ``grid`` (the *before* grid; *after* is misregistered)."""
    h = HALO_PX
    big = Grid(
        grid.x0 - h * grid.gsd,
        grid.y0 + h * grid.gsd,
        grid.gsd,
        grid.rows + 2 * h,
        grid.cols + 2 * h,
    )
    xs, ys = big.xs, big.ys
    shared = _shared(plan, xs, ys)
    imgs, present, clouds = [], [], []
    for e, epoch in enumerate(plan.epochs):
        img = _ground(plan, e, shared, xs, ys)
        for name in PAINT_ORDER:
            sp = plan.splats[e].get(name)
            if sp is None or sp.size == 0:
                continue
            cov, col = render_splats(sp, big, with_colour=name != "shade")
            if name == "shade":
                img *= (1 - 0.72 * cov)[None]
            else:
                img = img * (1 - cov)[None] + col * cov[None]
        img, cloud = apply_radiometry(img, xs, ys, epoch, plan.seed)
        if e == 1 and epoch.shift_m != (0.0, 0.0):
            dx, dy = epoch.shift_m
            shift = (0.0, dy / grid.gsd, -dx / grid.gsd)
            img = _shift(img, shift[1], shift[2])
            cloud = _shift(cloud[None], shift[1], shift[2])[0]
        if epoch.blur_sigma_px > 0:
            img = ndimage.gaussian_filter(
                img, (0, epoch.blur_sigma_px, epoch.blur_sigma_px), truncate=3.0
            )
        img, cloud = img[:, h:-h, h:-h], cloud[h:-h, h:-h]
        img = _sensor_noise(img, plan.seed, e, grid, epoch)
        ok = collar_grid(xs[h:-h], ys[h:-h], epoch)
        imgs.append(np.where(ok[None], np.clip(img, 0.0, 1.0), 0.0).astype(np.float32))
        present.append(ok)
        clouds.append(cloud.astype(np.float32))
    return BlockImages(imgs[0], imgs[1], (present[0], present[1]), (clouds[0], clouds[1]))


def _shift(img: F32, dr: float, dc: float) -> F32:
    """Bilinear sub-pixel shift: ``out[r, c] = img[r - dr, c - dc]`` (edges repeated)."""
    ir, ic = int(np.floor(dr)), int(np.floor(dc))
    fr, fc = np.float32(dr - ir), np.float32(dc - ic)
    rows, cols = img.shape[1:]
    r = np.clip(np.arange(rows) - ir, 0, rows - 1)
    r1 = np.clip(r - 1, 0, rows - 1)
    c = np.clip(np.arange(cols) - ic, 0, cols - 1)
    c1 = np.clip(c - 1, 0, cols - 1)
    a = img[:, r] * (1 - fr) + img[:, r1] * fr
    return (a[:, :, c] * (1 - fc) + a[:, :, c1] * fc).astype(np.float32)


def _sensor_noise(img: F32, seed: int, e: int, grid: Grid, epoch: EpochParams) -> F32:
    """Signal-dependent sensor noise (uniform with the given sigma: cheaper than Gaussian)."""
    key = [seed, e, round(grid.x0 * 8) % 2**31, round(grid.y0 * 8) % 2**31]
    u = np.random.default_rng(key).random(img.shape, dtype=np.float32)
    u -= np.float32(0.5)
    u *= np.float32(np.sqrt(12.0) * epoch.noise_sigma)
    u *= np.float32(0.7) + np.float32(0.6) * np.clip(img, 0, 1)
    return img + u


def _shared(plan: ScenePlan, xs: F64, ys: F64) -> dict[str, Any]:
    """Epoch-independent per-pixel fields of a block."""
    fr = plan.frame
    s, n = frame_sn(fr, xs, ys, coarse=16)
    c = np.interp(s, fr.s, plan.river_c).astype(np.float32)
    w = np.interp(s, fr.s, plan.river_w).astype(np.float32)
    rel = n - c
    prk = (rel * plan.prk_sign > 0).astype(np.float32)
    absrel = np.abs(rel)
    dist_edge = absrel - w
    out: dict[str, Any] = {"absrel": absrel, "w": w, "dist_edge": dist_edge}
    out["land"] = land_layout(xs, ys, dist_edge, prk, plan.seed, plan.forest_bias)
    out["fields"] = field_layout(plan.districts, xs, ys, plan.seed)
    lowland = smoothstep((450.0 - dist_edge) / 250.0)
    out["field_w"] = (1 - out["land"]["forest"]) * lowland * smoothstep((dist_edge - 4.0) / 6.0)
    out["village"] = _village_weight(plan, xs, ys)
    out["slope"] = _slopes(plan, xs, ys, dist_edge)
    forest = out["land"]["forest"]
    out["grain"] = fbm_grid(xs, ys, (6.0, 2.3, 1.0), plan.seed + 91, gain=0.8)
    out["grain_amp"] = 0.14 * out["field_w"] + 0.3 * (1 - out["field_w"]) * (1 - forest)
    land_w = (1 - forest) * (1 - 0.8 * out["field_w"]) * smoothstep((dist_edge - 8.0) / 6.0)
    if land_w.max() > 0.05:
        thr = 0.76 - 0.15 * out["land"]["lf"]
        out["tree_thr"] = thr
        out["tree"] = smoothstep((noise_grid(xs, ys, 4.0, plan.seed + 93) - thr) / 0.05)
        out["tree_w"] = land_w
    else:
        out["tree_w"] = None
    near = dist_edge < 60.0
    if near.any():  # river fields only on the window that holds water or banks
        rr, cc = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
        rs, cs = slice(int(rr[0]), int(rr[-1]) + 1), slice(int(cc[0]), int(cc[-1]) + 1)
        wx, wy = xs[cs], ys[rs]
        out["river"] = {
            "win": (rs, cs),
            "absrel": absrel[rs, cs],
            "w": w[rs, cs],
            "fine": noise_grid(wx, wy, 12.0, plan.seed + 81),
            "bars": fbm_grid(wx, wy, (220.0, 80.0, 25.0), plan.seed + 83),
            "sed": 0.75 + 0.6 * fbm_grid(wx, wy, (600.0, 150.0, 40.0), plan.seed + 87),
        }
    if any(ep.snow > 0 for ep in plan.epochs):
        out["snow"] = smoothstep((noise_grid(xs, ys, 40.0, plan.seed + 53) - 0.2) / 0.3)
    return out


def _ground(plan: ScenePlan, e: int, sh: dict[str, Any], xs: F64, ys: F64) -> F32:
    """Land cover, terrain shading, villages and the river of epoch ``e`` (no objects)."""
    epoch = plan.epochs[e]
    land = land_colours(sh["land"], epoch)
    fields = field_colours(sh["fields"], epoch, plan.seed, plan.params["crop_change_frac"])
    fw = sh["field_w"]
    img = land * (1 - fw)[None] + fields * fw[None]
    tw = (sh["fields"]["track"] * fw * 0.8)[None]
    img = img * (1 - tw) + colour("soil_light", epoch.season)[:, None, None] * tw
    vw, yard = sh["village"]
    if vw is not None:
        col = colour("village", epoch.season)[:, None, None] * (0.8 + 0.4 * yard)[None]
        col = np.where((yard > 0.62)[None], colour("crop_dark", epoch.season)[:, None, None], col)
        img = img * (1 - vw)[None] + col * vw[None]
    img = _texture_and_trees(plan, sh, img, epoch, xs, ys)
    img *= _hillshade(sh["slope"], epoch)[None]
    if epoch.snow > 0:
        sn = epoch.snow * (1 - 0.7 * sh["land"]["forest"]) * sh["snow"]
        img = img * (1 - sn)[None] + colour("snow", 0)[:, None, None] * sn[None]
    if "river" in sh:
        img = _river(sh, img, epoch, abs(float(xs[1] - xs[0])))
    return img.astype(np.float32)


def _texture_and_trees(
    plan: ScenePlan, sh: dict[str, Any], img: F32, epoch: EpochParams, xs: F64, ys: F64
) -> F32:
    """Fine multiplicative grain everywhere, and scattered trees/shrubs with cast shadows."""
    grain, amp = sh["grain"], sh["grain_amp"]
    img *= (1.0 + amp * (grain - 0.5) * 2.2)[None]
    tw = sh["tree_w"]
    if tw is None:
        return img
    sv = epoch.shadow_vec * 6.0
    thr = sh["tree_thr"]
    shifted = noise_grid(xs - sv[0], ys - sv[1], 4.0, plan.seed + 93)
    shadow = smoothstep((shifted - thr) / 0.05) * (1 - sh["tree"]) * tw
    img *= (1 - 0.55 * shadow)[None]
    tree = (sh["tree"] * tw)[None]
    crown = colour("forest", epoch.season)[:, None, None] * (0.75 + 0.6 * grain)[None]
    return img * (1 - tree) + crown * tree


def _slopes(plan: ScenePlan, xs: F64, ys: F64, dist_edge: F32) -> tuple[F32, F32]:
    """Terrain slopes (east, north), computed on a coarse grid and interpolated."""
    if len(xs) < 2 or len(ys) < 2:  # a one-pixel strip: no slope to speak of
        zero = np.zeros((len(ys), len(xs)), np.float32)
        return zero, zero
    # every 8th sample plus the last; np.unique drops the last when it is already a multiple of 8
    # (a repeated coordinate would make np.gradient divide by zero)
    ix = np.unique(np.r_[0 : len(xs) : 8, len(xs) - 1])
    iy = np.unique(np.r_[0 : len(ys) : 8, len(ys) - 1])
    cx, cy = xs[ix], ys[iy]
    de = dist_edge[iy][:, ix]
    hill = smoothstep((de - 60.0) / 500.0)
    elev = (
        hill * plan.hill_height_m * fbm_grid(cx, cy, (1100.0, 420.0, 160.0, 60.0), plan.seed + 61)
    )
    gy, gx = np.gradient(elev, cy, cx)
    return upsample_linear(gx.astype(np.float32), cx, cy, xs, ys), upsample_linear(
        gy.astype(np.float32), cx, cy, xs, ys
    )


def _hillshade(slope: tuple[F32, F32], epoch: EpochParams) -> F32:
    gx, gy = slope
    az, el = np.radians(epoch.sun_azimuth_deg), np.radians(epoch.sun_elevation_deg)
    sx, sy, sz = np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)
    shade = (-gx * sx - gy * sy + sz) / np.sqrt(gx * gx + gy * gy + 1.0) / sz
    return np.clip(0.55 + 0.45 * shade, 0.35, 1.35).astype(np.float32)


def _village_weight(plan: ScenePlan, xs: F64, ys: F64) -> tuple[F32 | None, F32 | None]:
    v = plan.villages
    if v.size == 0:
        return None, None
    pad = 300.0
    near = (
        (v[:, 0] > xs.min() - pad)
        & (v[:, 0] < xs.max() + pad)
        & (v[:, 1] > ys.min() - pad)
        & (v[:, 1] < ys.max() + pad)
    )
    if not near.any():
        return None, None
    wmax = np.zeros((len(ys), len(xs)), np.float32)
    for vx, vy, rad in v[near]:
        d = np.sqrt(((xs - vx) ** 2)[None, :] + ((ys - vy) ** 2)[:, None]).astype(np.float32)
        wmax = np.maximum(wmax, smoothstep((rad * 1.1 - d) / (0.3 * rad)))
    return wmax * 0.85, noise_grid(xs, ys, 9.0, plan.seed + 57)


def _river(sh: dict[str, Any], img: F32, epoch: EpochParams, gsd: float) -> F32:
    r = sh["river"]
    rs, cs = r["win"]
    w = r["w"] * epoch.river_level
    de = r["absrel"] - w + (r["fine"] - 0.5) * 6.0 + (sh["grain"][rs, cs] - 0.5) * 3.0
    water = smoothstep(0.5 - de / max(gsd, 0.5))
    depth = np.clip(-de / np.maximum(w, 1.0), 0.0, 1.0)
    bar = smoothstep((r["bars"] - 0.86 + 0.35 * (1 - depth) + 0.3 * (epoch.river_level - 1)) / 0.05)
    bar *= depth < 0.8
    tone = r["sed"] * (0.85 + 0.3 * (1 - depth))
    wcol = colour("water", epoch.season)[:, None, None] * tone[None]
    sand_tone = (0.8 + 0.25 * r["fine"]) * (0.8 + 0.4 * sh["grain"][rs, cs])
    sand = colour("sand", epoch.season)[:, None, None] * sand_tone[None]
    bank = smoothstep((14.0 - de) / 5.0) * (1 - water) * smoothstep((r["fine"] - 0.35) / 0.2)
    sub = img[:, rs, cs]
    sub = sub * (1 - bank)[None] + sand * bank[None]
    ww = (water * (1 - bar))[None]
    sub = sub * (1 - ww) + wcol * ww
    bw = (water * bar)[None]
    img[:, rs, cs] = sub * (1 - bw) + sand * bw
    return img
