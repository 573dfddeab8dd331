"""Plan a scene and render in-memory before/after pairs (:func:`render_pair`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio.features
import shapely
from affine import Affine

from bordewatch.errors import BordewatchError
from bordewatch.synth.frame import Frame, _project, build_frame, frame_sn, frame_xy
from bordewatch.synth.infrastructure import infra_splats, plan_infrastructure
from bordewatch.synth.landcover import plan_districts, plan_roads, plan_villages, village_splats
from bordewatch.synth.nuisance import cloud_points, draw_epochs
from bordewatch.synth.plan import EpochParams, ScenePlan, TruthObject
from bordewatch.synth.presets import Preset, get_preset
from bordewatch.synth.render import render_block
from bordewatch.synth.splat import Grid, concat, render_splats

__all__ = ["BAND_INDEX", "SynthPair", "build_plan", "render_pair"]

BAND_INDEX = {"red": 0, "green": 1, "blue": 2, "nir": 3}
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SynthPair:
    """An in-memory synthetic before/after pair with ground truth in pixel coordinates.

    Attributes
    ----------
    before, after : ndarray of float32, shape (band, row, col)
        0–1 reflectance-like values; ``after`` is misregistered by ``params["after_shift_px"]``.
    valid : ndarray of bool, shape (row, col)
        False under clouds and nodata collars of either epoch.
    truth : tuple of TruthObject
        Geometries in pixel coordinates of the *before* grid: x = col, y = row, (0, 0) the
        top-left corner of the top-left pixel (pixel centres at +0.5).
    drawn : dict of str to (ndarray, ndarray) of float32, shape (row, col)
        Per class, the coverage 0–1 of what was actually painted in (before, after): fence
        wires and wall tops, lane surfaces, tower roofs (shadows and cleared belts excluded),
        on the *before* grid without misregistration.
    prk_mask : ndarray of bool, shape (row, col)
        True on the North Korean side of the river (where infrastructure is built).
    border : shapely.LineString
        The (smoothed) border line in pixel coordinates.
    gsd_m : float
    bands : tuple of str
    sun_azimuth_deg, sun_elevation_deg : tuple of float
        Per epoch (before, after).
    params : dict
        Every drawn parameter (JSON-serialisable).
    """

    before: F32
    after: F32
    valid: npt.NDArray[np.bool_]
    truth: tuple[TruthObject, ...]
    drawn: dict[str, tuple[F32, F32]]
    prk_mask: npt.NDArray[np.bool_]
    border: shapely.LineString
    gsd_m: float
    bands: tuple[str, ...]
    sun_azimuth_deg: tuple[float, float]
    sun_elevation_deg: tuple[float, float]
    params: dict[str, Any] = field(default_factory=dict)

    def truth_mask(
        self, cls: str, status: str | tuple[str, ...] | None = None, width_px: float | None = None
    ) -> npt.NDArray[np.bool_]:
        """Rasterise the truth of class ``cls`` (optionally only ``status``) to a bool mask.

        Lines are buffered to ``width_px`` (default: their width, at least 1 px); towers to
        their footprint (or ``width_px``).
        """
        wanted = (status,) if isinstance(status, str) else status
        shapes = []
        for t in self.truth:
            if t.cls != cls or (wanted is not None and t.status not in wanted):
                continue
            w = width_px if width_px is not None else max(1.0, t.width_m / self.gsd_m)
            shapes.append(
                t.geometry.buffer(w / 2.0, cap_style="flat" if t.cls != "watchtower" else "square")
            )
        shape = self.before.shape[1:]
        if not shapes:
            return np.zeros(shape, bool)
        return rasterio.features.rasterize(
            shapes, out_shape=shape, transform=Affine.identity(), all_touched=True, dtype="uint8"
        ).astype(bool)


def _draw(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(*r)) if r[1] > r[0] else float(r[0])


def build_plan(
    line_xy: F64,
    *,
    bounds: tuple[float, float, float, float],
    gsd_m: float,
    preset: Preset,
    rng: np.random.Generator,
    seed: int,
    prk_sign: float,
    half_width_m: float,
    max_river_w: float = 250.0,
) -> ScenePlan:
    """Plan a scene around a border line (world metres) inside ``bounds``."""
    extend = 800.0
    frame = build_frame(line_xy, extend_m=extend, smooth_m=min(800.0, half_width_m))
    s = frame.s
    width = min(_draw(rng, preset.river_width_m), max_river_w)
    amp = min(_draw(rng, preset.meander_amp_m), 0.3 * half_width_m)
    lam1, lam2 = rng.uniform(1500, 4000), rng.uniform(500, 1400)
    ph1, ph2 = rng.uniform(0, 2 * np.pi, 2)
    river_c = amp * (
        0.75 * np.sin(2 * np.pi * s / lam1 + ph1) + 0.35 * np.sin(2 * np.pi * s / lam2 + ph2)
    )
    wob = np.convolve(rng.normal(0, 1, s.size), np.ones(41) / 41, mode="same")
    river_w = width / 2 * (1 + 1.5 * wob)
    epochs = draw_epochs(preset, rng, gsd_m, bounds)
    room = max(40.0, half_width_m - width / 2 - amp - 60.0)
    n_layers = int(rng.integers(preset.layers_after[0], preset.layers_after[1] + 1))
    gaps = np.sort(rng.uniform(*preset.layer_gap_m, max(0, n_layers - 1)))
    gaps = np.minimum(gaps, room / max(1, n_layers))
    core = (min(extend, frame.length_m / 3), max(frame.length_m - extend, 2 * frame.length_m / 3))
    length = core[1] - core[0]  # the stretch asked for (the frame extends beyond it)
    tb = preset.n_towers_before
    tn = preset.n_towers_new
    n_before = (
        tb
        if tb is not None
        else int(rng.poisson(length / _draw(rng, preset.tower_spacing_before_m)))
    )
    n_new = (
        tn
        if tn is not None
        else max(0, int(length / _draw(rng, preset.tower_spacing_after_m)) - n_before)
    )
    p: dict[str, Any] = {
        "river_c": river_c,
        "river_w": river_w,
        "prk_sign": prk_sign,
        "setback": _draw(rng, preset.bank_setback_m),
        "jitter": np.cumsum(np.convolve(rng.normal(0, 0.6, s.size), np.ones(25) / 25, mode="same")),
        "layers_after": n_layers,
        "layer_gaps": [float(g) for g in gaps],
        "fenced_before": _draw(rng, preset.fenced_before),
        "remove_frac": _draw(rng, preset.remove_frac),
        "upgrade_frac": _draw(rng, preset.upgrade_frac),
        "wall_frac_new": _draw(rng, preset.wall_frac_new),
        "layer_cover": _draw(rng, preset.layer_cover),
        "wall_frac_before": _draw(rng, preset.wall_frac_before),
        "core_s": core,
        "lane_frac_before": _draw(rng, preset.lane_frac_before),
        "nothing_new": preset.nothing_new,
        "n_towers_before": n_before,
        "n_towers_new": n_new,
    }
    p["jitter"] = np.clip(p["jitter"] - p["jitter"].mean(), -15, 15)
    k = np.ones(61) / 61
    p["river_w_smooth"] = np.convolve(np.pad(river_w, 30, mode="edge"), k, mode="valid")
    items = plan_infrastructure(frame, rng, p)
    lc = {
        "villages_per_km": _draw(rng, preset.n_villages_per_km),
        "roads_per_km": _draw(rng, preset.n_roads_per_km),
        "river_half_m": width / 2,
    }
    step = gsd_m / 3.0
    districts = plan_districts(frame, rng, half_width_m)
    villages = plan_villages(frame, rng, lc, half_width_m)
    villages = _keep_villages_clear(villages, items, frame, p)
    houses = village_splats(villages, rng, _draw(rng, preset.new_house_frac), epochs, step)
    roads = plan_roads(frame, rng, lc, half_width_m, step, _water_test(frame, river_c, river_w))
    contrast = _draw(rng, preset.fence_contrast)
    splats = []
    for e, ep in enumerate(epochs):
        inf = infra_splats(items, ep, e, step, contrast)
        splats.append(
            {
                "road": roads,
                "clear": inf["clear"],
                "lane": inf["lane"],
                "shade": concat([inf["shadow"], houses[e]["house_shadow"]]),
                "wire": inf["wire"],
                "wall": inf["wall"],
                "roof": concat([inf["roof"], houses[e]["roof"]]),
                **{k: v for k, v in inf.items() if k.startswith("d_")},
            }
        )
    params = {
        "preset": preset.name,
        "seed": seed,
        "gsd_m": gsd_m,
        "river_width_m": width,
        "meander_amp_m": amp,
        "fence_contrast": contrast,
        "crop_change_frac": _draw(rng, preset.crop_change_frac),
        "hill_height_m": _draw(rng, preset.hill_height_m),
        "forest_bias": _draw(rng, preset.forest_bias),
        "n_villages": len(villages),
        **{k: v for k, v in p.items() if not isinstance(v, np.ndarray)},
        **lc,
        "epochs": [_epoch_dict(ep) for ep in epochs],
    }
    truth = tuple(it.truth() for it in items)
    return ScenePlan(
        seed=seed,
        gsd=gsd_m,
        bounds=bounds,
        frame=frame,
        river_c=river_c,
        river_w=river_w,
        bank_w=np.full_like(s, 10.0),
        prk_sign=prk_sign,
        hill_height_m=params["hill_height_m"],
        forest_bias=params["forest_bias"],
        districts=districts,
        epochs=epochs,
        splats=(splats[0], splats[1]),
        villages=villages,
        truth=truth,
        params=params,
    )


def _water_test(frame: Frame, river_c: F64, river_w: F64) -> Any:
    def in_water(xy: F64) -> npt.NDArray[np.bool_]:
        s, n = _project(frame, xy[:, 0].copy(), xy[:, 1].copy())
        c = np.interp(s, frame.s, river_c)
        w = np.interp(s, frame.s, river_w)
        return np.abs(n - c) < w * 1.15 + 6.0

    return in_water


def _keep_villages_clear(villages: F64, items: list[Any], frame: Frame, p: dict[str, Any]) -> F64:
    """Drop villages whose houses would sit on the fence belt (keeps truth unambiguous)."""
    if villages.size == 0 or not items:
        return villages
    lines = shapely.MultiLineString(
        [it.xy for it in items if it.cls != "watchtower"] or [[(0, 0), (0, 1)]]
    )
    d = shapely.distance(shapely.points(villages[:, :2]), lines)
    return villages[d > villages[:, 2] * 1.3 + 20.0]


def _epoch_dict(ep: EpochParams) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in ep.__dataclass_fields__:
        v = getattr(ep, k)
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


def observable(plan: ScenePlan, geom: shapely.Geometry, valid_fn: Any = None) -> bool:
    """True if at least half of ``geom`` (sampled every 2 m) is cloud-free data in both epochs."""
    if geom.geom_type == "Point":
        pts = np.array([[geom.x, geom.y]])
    else:
        d = np.arange(0.0, geom.length + 1e-9, 2.0)
        pts = shapely.get_coordinates(shapely.line_interpolate_point(geom, d))
    ok = np.ones(len(pts), bool)
    for ep in plan.epochs:
        ok &= cloud_points(pts[:, 0], pts[:, 1], ep, plan.seed) < 0.3
        if ep.collar is not None:
            nx, ny, thr = ep.collar
            ok &= pts[:, 0] * nx + pts[:, 1] * ny <= thr
    if valid_fn is not None:
        ok &= valid_fn(pts)
    return bool(ok.mean() >= 0.5)


def render_pair(
    *,
    size_px: tuple[int, int] = (512, 512),
    gsd_m: float = 1.0,
    preset: str | Preset = "demo",
    rng: np.random.Generator | int | None = 0,
    bands: tuple[str, ...] = ("red", "green", "blue", "nir"),
) -> SynthPair:
    """Render a synthetic before/after pair of a river-border window, in memory, with truth.

    The river runs roughly top to bottom (±30°); the North Korean side (``prk_mask``) is on a
    random side and holds the fences, lanes and towers.

    Parameters
    ----------
    size_px : (rows, cols)
    gsd_m : float
        Pixel size, metres (0.3–10).
    preset : str or Preset
        ``demo``, ``hoeryong``, ``hard`` or ``nothing_new`` (or a :class:`Preset`, e.g.
        ``get_preset("demo", **QUIET)`` for a pair without nuisance change).
    rng : Generator or int or None
        Randomness (same int -> identical arrays).
    bands : tuple of str
        Any of ``red``, ``green``, ``blue``, ``nir`` in the wanted order.

    Examples
    --------
    >>> pair = render_pair(size_px=(64, 64), rng=1)
    >>> pair.before.shape
    (4, 64, 64)
    """
    rows, cols = int(size_px[0]), int(size_px[1])
    if rows < 16 or cols < 16:
        raise BordewatchError(f"render_pair: size_px {size_px} is too small (at least 16 × 16)")
    if not 0.1 <= gsd_m <= 30:
        raise BordewatchError(f"render_pair: gsd_m={gsd_m} is outside 0.1–30 m")
    unknown = [b for b in bands if b not in BAND_INDEX]
    if unknown:
        raise BordewatchError(f"render_pair: unknown band(s) {unknown}; use red, green, blue, nir")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    seed = int(gen.integers(0, 2**31 - 1))
    pre = get_preset(preset)
    pre = replace(pre, n_towers_before=None, n_towers_new=None) if pre.n_towers_new else pre
    w_m, h_m = cols * gsd_m, rows * gsd_m
    ox, oy = float(gen.uniform(1e4, 9e4)), float(gen.uniform(1e4, 9e4))  # textures differ per pair
    bounds = (ox, oy, ox + w_m, oy + h_m)
    theta = np.radians(-90.0 + gen.uniform(-30, 30))
    prk_sign = float(gen.choice([-1.0, 1.0]))
    centre = np.array([ox + w_m / 2, oy + h_m / 2])
    shift_frac = float(gen.uniform(0.1, 0.2))
    d = np.array([np.cos(theta), np.sin(theta)])
    left = np.array([-d[1], d[0]])
    centre = centre - prk_sign * left * shift_frac * min(w_m, h_m)
    half_len = np.hypot(w_m, h_m) / 2 + 300.0
    line = np.array([centre - d * half_len, centre + d * half_len])
    half_width = 0.5 * min(w_m, h_m) + shift_frac * min(w_m, h_m)
    plan = build_plan(
        line,
        bounds=bounds,
        gsd_m=gsd_m,
        preset=pre,
        rng=gen,
        seed=seed,
        prk_sign=prk_sign,
        half_width_m=half_width,
        max_river_w=0.3 * min(w_m, h_m),
    )
    grid = Grid(ox, oy + h_m, gsd_m, rows, cols)
    block = render_block(plan, grid)
    sel = [BAND_INDEX[b] for b in bands]
    return _assemble(plan, grid, [block.before[sel], block.after[sel]], block.valid, bands)


def _assemble(
    plan: ScenePlan,
    grid: Grid,
    imgs: list[F32],
    valid: npt.NDArray[np.bool_],
    bands: tuple[str, ...],
) -> SynthPair:
    to_px = Affine(1 / grid.gsd, 0.0, -grid.x0 / grid.gsd, 0.0, -1 / grid.gsd, grid.y0 / grid.gsd)
    box = shapely.box(0, 0, grid.cols, grid.rows)
    truth = []
    for t in plan.truth:
        g = shapely.affinity.affine_transform(t.geometry, to_px.to_shapely())
        g = g.intersection(box) if t.cls != "watchtower" else g
        if g.is_empty or not box.intersects(g):
            continue
        parts = (
            [g]
            if g.geom_type in ("LineString", "Point")
            else [p for p in shapely.get_parts(g) if p.geom_type == "LineString"]
        )
        for part in parts:
            if part.geom_type == "LineString" and part.length * grid.gsd < 5.0:
                continue
            world = shapely.affinity.affine_transform(part, (~to_px).to_shapely())
            truth.append(replace(t, geometry=part, observable=observable(plan, world)))
    ys, xs = grid.ys, grid.xs
    s, n = frame_sn(plan.frame, xs, ys)
    rel = n - np.interp(s, plan.frame.s, plan.river_c)
    border = shapely.affinity.affine_transform(
        shapely.LineString(frame_xy(plan.frame, plan.frame.s, 0.0)), to_px.to_shapely()
    )
    dx, dy = plan.epochs[1].shift_m
    params = dict(plan.params)
    params["after_shift_px"] = [float(-dy / grid.gsd), float(dx / grid.gsd)]
    return SynthPair(
        before=imgs[0],
        after=imgs[1],
        valid=valid,
        truth=tuple(truth),
        drawn={
            cls: (
                render_splats(plan.splats[0][f"d_{cls}"], grid, with_colour=False)[0],
                render_splats(plan.splats[1][f"d_{cls}"], grid, with_colour=False)[0],
            )
            for cls in ("fence", "patrol_lane", "watchtower")
        },
        prk_mask=np.asarray(rel * plan.prk_sign > 0),
        border=border.intersection(box) if border.intersects(box) else border,
        gsd_m=grid.gsd,
        bands=tuple(bands),
        sun_azimuth_deg=(plan.epochs[0].sun_azimuth_deg, plan.epochs[1].sun_azimuth_deg),
        sun_elevation_deg=(plan.epochs[0].sun_elevation_deg, plan.epochs[1].sun_elevation_deg),
        params=params,
    )
