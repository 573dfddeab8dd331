"""Border infrastructure: fence layers, patrol lanes and watchtowers, their epochs and truth.

Fences run roughly parallel to the PRK river bank in 1–3 layers, cut into pieces (gaps at
streams and gates). Each piece has a kind before and after (``""``, ``"wire"``, ``"wall"``), which
fixes its status: new, existing, upgraded (wire → wall) or removed. Lanes and towers likewise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from bordewatch.synth.frame import Frame, frame_xy
from bordewatch.synth.plan import EpochParams, TruthObject
from bordewatch.synth.splat import Splats, concat, polygon_samples, stroke_samples

__all__ = ["Infra", "infra_splats", "plan_infrastructure"]

F64 = npt.NDArray[np.float64]
WIRE = np.array([0.13, 0.13, 0.12, 0.14], np.float32)
CONCRETE = np.array([0.74, 0.72, 0.68, 0.66], np.float32)
SOIL = np.array([0.62, 0.54, 0.43, 0.50], np.float32)
CLEARED = np.array([0.42, 0.42, 0.30, 0.42], np.float32)
TOWER_ROOFS = np.array(
    [(0.35, 0.45, 0.35, 0.3), (0.6, 0.6, 0.58, 0.5), (0.3, 0.4, 0.6, 0.3), (0.6, 0.3, 0.25, 0.35)],
    np.float32,
)


@dataclass(frozen=True, slots=True)
class Infra:
    """One planned object: world geometry, kinds per epoch and drawing parameters."""

    cls: str
    xy: F64
    kinds: tuple[str, str]
    widths: tuple[float, float]
    height_m: float
    extra: tuple[float, ...] = ()

    @property
    def status(self) -> str:
        """Status implied by the kinds before and after."""
        (b, a), (wb, wa) = self.kinds, self.widths
        if not b:
            return "new"
        if not a:
            return "removed"
        if b != a or wa > wb + 0.5:
            return "upgraded"
        return "existing"

    def truth(self) -> TruthObject:
        """The ground-truth record of this object (world coordinates)."""
        geom = (
            shapely.Point(self.xy[0]) if self.cls == "watchtower" else shapely.LineString(self.xy)
        )
        return TruthObject(
            self.cls,
            self.status,
            geom,
            True,
            float(max(self.widths)),
            self.kinds[0],
            self.kinds[1],
        )


def _pieces(rng: np.random.Generator, length: float, gap_p: float) -> list[tuple[float, float]]:
    out, s = [], rng.uniform(0, 30)
    while s < length - 40:
        e = min(length, s + rng.uniform(150, 500))
        out.append((s, e))
        s = e + (rng.uniform(6, 25) if rng.random() < gap_p else 0.0)
    return out


def _line(frame: Frame, p: dict[str, Any], s0: float, s1: float, extra_off: F64 | float) -> F64:
    s = np.linspace(s0, s1, max(2, int((s1 - s0) / 8.0) + 1))
    c = np.interp(s, frame.s, p["river_c"])
    w = np.interp(s, frame.s, p["river_w_smooth"])
    jit = np.interp(s, frame.s, p["jitter"])
    off = c + p["prk_sign"] * (w * 1.12 + p["setback"] + jit + extra_off)
    return frame_xy(frame, s, off)


def plan_infrastructure(frame: Frame, rng: np.random.Generator, p: dict[str, Any]) -> list[Infra]:
    """Plan fences, lanes and towers on the PRK side of the river frame."""
    out: list[Infra] = []
    length = frame.length_m
    nothing_new = p["nothing_new"]
    n_layers = p["layers_after"]
    gaps = np.concatenate([[0.0], np.cumsum(p["layer_gaps"])])
    tower_line = None
    for layer in range(n_layers):
        for s0, s1 in _pieces(rng, length, 0.35):
            xy = _line(frame, p, s0, s1, gaps[layer])
            if layer == 0:
                before = (
                    ("wall" if rng.random() < p["wall_frac_before"] else "wire")
                    if rng.random() < p["fenced_before"]
                    else ""
                )
            else:
                before = ""
            if nothing_new:
                after = before
            elif before and rng.random() < p["remove_frac"]:
                after = ""
            elif before == "wire" and rng.random() < p["upgrade_frac"]:
                after = "wall"
            elif before:
                after = before
            else:
                cover = 1.0 if layer == 0 else p["layer_cover"]
                after = (
                    ("wall" if rng.random() < p["wall_frac_new"] else "wire")
                    if rng.random() < cover
                    else ""
                )
            if not before and not after:
                continue
            thick = {"wire": 0.3, "wall": 0.45, "": 0.0}
            out.append(
                Infra(
                    "fence",
                    xy,
                    (before, after),
                    (thick[before], thick[after]),
                    rng.uniform(2.0, 3.2),
                )
            )
            if layer == 0:
                out.extend(_lane(frame, p, rng, s0, s1, before, after))
        if layer == 0:
            tower_line = _line(frame, p, *p["core_s"], rng.uniform(5.0, 10.0))
    if tower_line is not None:
        out.extend(_towers(rng, tower_line, p))
    return out


def _lane(
    frame: Frame,
    p: dict[str, Any],
    rng: np.random.Generator,
    s0: float,
    s1: float,
    before: str,
    after: str,
) -> list[Infra]:
    wb = rng.uniform(2.0, 4.0) if before and rng.random() < p["lane_frac_before"] else 0.0
    if p["nothing_new"]:
        wa = wb
    elif after:
        wa = wb + (rng.uniform(1.0, 2.0) if (wb == 0 or rng.random() < 0.4) else 0.0)
        wa = min(max(wa, rng.uniform(2.5, 4.5)), 6.0) if wb == 0 else wa
    else:
        wa = 0.0
    if wb == 0 and wa == 0:
        return []
    xy = _line(frame, p, s0, s1, 3.0 + max(wb, wa) / 2)
    ruts = float(rng.random() < 0.5)
    return [
        Infra(
            "patrol_lane", xy, ("lane" if wb else "", "lane" if wa else ""), (wb, wa), 0.0, (ruts,)
        )
    ]


def _towers(rng: np.random.Generator, line: F64, p: dict[str, Any]) -> list[Infra]:
    seg = np.hypot(*np.diff(line, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    n_before = p["n_towers_before"]
    n_new = 0 if p["nothing_new"] else p["n_towers_new"]
    total = n_before + n_new
    if total == 0:
        return []
    pos = (np.arange(total) + rng.uniform(0.2, 0.8, total)) * cum[-1] / total
    order = rng.permutation(total)
    out = []
    for k, t in enumerate(pos):
        x, y = np.interp(t, cum, line[:, 0]), np.interp(t, cum, line[:, 1])
        i = min(int(np.searchsorted(cum, t)), len(seg)) - 1
        d = line[max(i, 0) + 1] - line[max(i, 0)]
        ang = float(np.arctan2(d[1], d[0]))
        existed = order[k] < n_before
        removed = existed and not p["nothing_new"] and rng.random() < p["remove_frac"] * 0.5
        kinds = ("tower" if existed else "", "" if removed else "tower")
        size = rng.uniform(2.0, 6.0)
        roof = float(rng.integers(0, len(TOWER_ROOFS)))
        out.append(
            Infra(
                "watchtower",
                np.array([[x, y]]),
                kinds,
                (size, size),
                rng.uniform(5, 10),
                (ang, roof),
            )
        )
    return out


def _sweep(xy: F64, vec: F64, step_m: float, opacity: float) -> Splats:
    """Samples of the area swept by a polyline translated along ``vec`` (a wall's shadow)."""
    base = stroke_samples(xy, 0.01, (0, 0, 0, 0), step_m=step_m)
    if base.size == 0:
        return base
    d = np.gradient(xy, axis=0)
    d /= np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None]
    seg = np.hypot(*np.diff(xy, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    t = (np.arange(base.size) + 0.5) * (cum[-1] / base.size)
    dx, dy = np.interp(t, cum, d[:, 0]), np.interp(t, cum, d[:, 1])
    width = np.abs(dx * vec[1] - dy * vec[0])
    m = max(1, int(np.ceil(np.hypot(*vec) / step_m)))
    f = (np.arange(m) + 0.5) / m
    x = (base.x[:, None] + f[None, :] * vec[0]).ravel()
    y = (base.y[:, None] + f[None, :] * vec[1]).ravel()
    area = np.repeat((cum[-1] / base.size) * width / m * opacity, m).astype(np.float32)
    return Splats(x, y, area, np.zeros((x.size, 4), np.float32))


def infra_splats(
    items: list[Infra], epoch: EpochParams, e: int, step_m: float, contrast: float
) -> dict[str, Splats]:
    """Splat layers of all infrastructure present in epoch ``e`` (0 before, 1 after)."""
    layers: dict[str, list[Splats]] = {
        "clear": [],
        "lane": [],
        "shadow": [],
        "wire": [],
        "wall": [],
        "roof": [],
        "d_fence": [],  # the objects themselves, per class (bookkeeping: SynthPair.drawn)
        "d_patrol_lane": [],
        "d_watchtower": [],
    }
    sv = epoch.shadow_vec
    for it in items:
        kind = it.kinds[e]
        if not kind:
            continue
        if it.cls == "patrol_lane":
            layers["lane"].append(
                stroke_samples(it.xy, it.widths[e], SOIL, step_m=step_m, opacity=0.9)
            )
            layers["d_patrol_lane"].append(layers["lane"][-1])
            if it.extra and it.extra[0] > 0:
                for side in (-0.8, 0.8):
                    off = _offset(it.xy, side)
                    layers["wire"].append(
                        stroke_samples(off, 0.5, SOIL * 0.75, step_m=step_m, opacity=0.5)
                    )
        if it.cls == "fence":  # a cleared belt (vegetation cut back) along every fence
            belt = stroke_samples(it.xy, it.height_m * 2.5, CLEARED, step_m=step_m, opacity=0.45)
            layers["clear"].append(belt)
        if it.cls == "fence" and kind == "wire":
            layers["lane"].append(
                stroke_samples(it.xy, 2.5, SOIL * 0.95, step_m=step_m, opacity=0.3 * contrast)
            )
            layers["wire"].append(
                stroke_samples(it.xy, 0.3, WIRE, step_m=step_m / 2, opacity=0.75 * contrast)
            )
            layers["d_fence"].append(layers["wire"][-1])
            layers["shadow"].append(_sweep(it.xy, sv * it.height_m, step_m, 0.18 * contrast))
            layers["shadow"].append(_posts(it.xy, sv * it.height_m, step_m, contrast))
        elif it.cls == "fence":
            layers["wall"].append(
                stroke_samples(it.xy, 0.45, CONCRETE, step_m=step_m / 2, opacity=contrast)
            )
            layers["d_fence"].append(layers["wall"][-1])
            layers["shadow"].append(_sweep(it.xy, sv * it.height_m * 0.7, step_m, 0.75 * contrast))
        elif it.cls == "watchtower":
            layers["shadow"].append(_tower_shadow(it, sv, step_m))
            layers["roof"].append(_tower_roof(it, epoch, step_m))
            layers["d_watchtower"].append(layers["roof"][-1])
    return {k: concat(v) for k, v in layers.items()}


def _offset(xy: F64, dist: float) -> F64:
    d = np.gradient(xy, axis=0)
    d /= np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None]
    return xy + dist * np.column_stack([-d[:, 1], d[:, 0]])


def _posts(xy: F64, vec: F64, step_m: float, contrast: float) -> Splats:
    seg = np.hypot(*np.diff(xy, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    spacing = 3.0
    t = np.arange(0.5, cum[-1], spacing)
    px, py = np.interp(t, cum, xy[:, 0]), np.interp(t, cum, xy[:, 1])
    m = max(2, int(np.ceil(np.hypot(*vec) / step_m)))
    f = (np.arange(m) + 0.5) / m
    x = (px[:, None] + f[None, :] * vec[0]).ravel()
    y = (py[:, None] + f[None, :] * vec[1]).ravel()
    area = np.full(x.size, 0.12 * np.hypot(*vec) / m * 0.85 * contrast, np.float32)
    return Splats(x, y, area, np.zeros((x.size, 4), np.float32))


def _square(it: Infra) -> F64:
    ang, size = it.extra[0], it.widths[1] or it.widths[0]
    u = np.array([np.cos(ang), np.sin(ang)]) * size / 2
    v = np.array([-u[1], u[0]])
    return it.xy[0] + np.array([-u - v, u - v, u + v, -u + v])


def _tower_shadow(it: Infra, sv: F64, step_m: float) -> Splats:
    sq = _square(it)
    hull = shapely.MultiPoint(np.vstack([sq, sq + it.height_m * sv])).convex_hull
    return polygon_samples(hull, (0, 0, 0, 0), step_m=step_m, opacity=0.7)


def _tower_roof(it: Infra, epoch: EpochParams, step_m: float) -> Splats:
    col = TOWER_ROOFS[int(it.extra[1])]
    return polygon_samples(shapely.Polygon(_square(it)), col, step_m=step_m)
