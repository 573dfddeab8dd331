"""Land cover: fields (parcels with row texture), forest (crowns), bare hills, villages, roads.

Layout (district seeds, villages, roads) is planned once per scene in world metres; per-pixel
colour is a pure function of world position, epoch and the plan, so blocks render independently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from scipy.spatial import cKDTree

from bordewatch.synth.frame import Frame, frame_xy, resample_line
from bordewatch.synth.noise import fbm_grid, hash01, noise_grid, smoothstep
from bordewatch.synth.plan import EpochParams
from bordewatch.synth.splat import Splats, concat, polygon_samples, stroke_samples

__all__ = [
    "PALETTE",
    "field_colours",
    "plan_districts",
    "plan_roads",
    "plan_villages",
    "village_splats",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

# Display-referred colours (R, G, B, NIR) in 0–1, summer and dormant season, tuned by eye
# against 0.5 m VHR crops (LEVIR-CD, Joplin).
PALETTE: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "crop_green": ((0.24, 0.33, 0.17, 0.58), (0.46, 0.41, 0.31, 0.40)),
    "crop_dark": ((0.17, 0.26, 0.14, 0.52), (0.38, 0.34, 0.27, 0.36)),
    "crop_yellow": ((0.50, 0.46, 0.30, 0.46), (0.52, 0.46, 0.36, 0.42)),
    "soil_brown": ((0.44, 0.37, 0.28, 0.40), (0.42, 0.36, 0.29, 0.38)),
    "soil_light": ((0.58, 0.51, 0.40, 0.50), (0.56, 0.50, 0.41, 0.48)),
    "paddy": ((0.20, 0.29, 0.21, 0.38), (0.40, 0.37, 0.30, 0.34)),
    "grass": ((0.33, 0.38, 0.22, 0.50), (0.47, 0.43, 0.32, 0.40)),
    "forest": ((0.11, 0.18, 0.10, 0.46), (0.20, 0.21, 0.16, 0.30)),
    "bare_hill": ((0.46, 0.41, 0.31, 0.42), (0.50, 0.44, 0.35, 0.42)),
    "village": ((0.47, 0.44, 0.39, 0.40), (0.50, 0.47, 0.42, 0.40)),
    "water": ((0.15, 0.19, 0.17, 0.06), (0.16, 0.19, 0.20, 0.06)),
    "sand": ((0.64, 0.59, 0.50, 0.58), (0.66, 0.61, 0.53, 0.58)),
    "snow": ((0.88, 0.90, 0.93, 0.82), (0.88, 0.90, 0.93, 0.82)),
}
CROPS = ("crop_green", "crop_dark", "crop_yellow", "soil_brown", "soil_light", "paddy", "grass")
CROP_P = np.cumsum([0.22, 0.14, 0.12, 0.14, 0.08, 0.2, 0.1])


def colour(name: str, season: float) -> F32:
    """Colour of a palette entry at ``season`` (0 summer … 1 dormant)."""
    a, b = PALETTE[name]
    return (np.asarray(a, np.float32) * (1 - season) + np.asarray(b, np.float32) * season).astype(
        np.float32
    )


def plan_districts(frame: Frame, rng: np.random.Generator, half_width_m: float) -> dict[str, F64]:
    """Farm districts: Voronoi seeds with parcel orientation and sizes."""
    n = max(4, int(frame.length_m * 2 * half_width_m / 250_000))
    s = rng.uniform(0, frame.length_m, n)
    off = rng.uniform(-half_width_m, half_width_m, n)
    xy = frame_xy(frame, s, off)
    tan = np.interp(s, frame.s, np.arctan2(frame.normal[:, 0], -frame.normal[:, 1]))
    angle = np.where(rng.random(n) < 0.6, tan + rng.normal(0, 0.15, n), rng.uniform(0, np.pi, n))
    return {
        "x": xy[:, 0],
        "y": xy[:, 1],
        "angle": angle,
        "lu": rng.uniform(25, 110, n),
        "lv": rng.uniform(10, 40, n),
        "ou": rng.uniform(0, 1000, n),
        "ov": rng.uniform(0, 1000, n),
        "row_m": rng.uniform(1.2, 3.5, n),
        "track": (rng.random(n) < 0.5).astype(np.float64),
    }


def _nearest_district(d: dict[str, F64], xs: F64, ys: F64) -> tuple[npt.NDArray[np.intp], F32]:
    """Nearest district id per pixel and half the gap to the second nearest (edge distance).

    Three candidate seeds per 4 × 4 pixel cell come from a k-d tree; exact distances to those
    decide each pixel.
    """
    k = min(3, len(d["x"]))
    tree = cKDTree(np.column_stack([d["x"], d["y"]]))
    cx, cy = xs[::4], ys[::4]
    gx, gy = np.meshgrid(cx, cy)
    _, cand = tree.query(np.column_stack([gx.ravel(), gy.ravel()]), k=k)
    cand = cand.reshape(len(cy), len(cx), k)
    ri = np.minimum(np.arange(len(ys)) // 4, len(cy) - 1)
    ci = np.minimum(np.arange(len(xs)) // 4, len(cx) - 1)
    best = np.full((len(ys), len(xs)), np.inf, np.float32)
    second = best.copy()
    ident = np.zeros((len(ys), len(xs)), np.intp)
    for j in range(k):
        cid = cand[:, :, j][ri][:, ci]
        dist = np.hypot(
            (xs[None, :] - d["x"][cid]).astype(np.float32),
            (ys[:, None] - d["y"][cid]).astype(np.float32),
        )
        closer = dist < best
        second = np.where(closer, best, np.minimum(second, dist))
        best = np.where(closer, dist, best)
        ident = np.where(closer, cid, ident)
    return ident, (second - best) * 0.5


def field_layout(d: dict[str, F64], xs: F64, ys: F64, seed: int) -> dict[str, Any]:
    """Per-pixel parcel layout shared by both epochs: parcel ids, row texture, bunds, tracks."""
    ident, edge = _nearest_district(d, xs, ys)
    ang = d["angle"][ident].astype(np.float32)
    ca, sa = np.cos(ang), np.sin(ang)
    x = xs[None, :].astype(np.float32) - np.float32(xs[0])
    y = ys[:, None].astype(np.float32) - np.float32(ys[0])
    u = x * ca + y * sa + (d["ou"][ident] + (xs[0] * ca + ys[0] * sa) % 1e4).astype(np.float32)
    v = -x * sa + y * ca + (d["ov"][ident] + (-xs[0] * sa + ys[0] * ca) % 1e4).astype(np.float32)
    lu, lv = d["lu"][ident].astype(np.float32), d["lv"][ident].astype(np.float32)
    fu = u / lu
    iu = np.floor(fu).astype(np.int64)
    lv = lv * (0.5 + hash01(iu, ident, seed + 7))  # each strip of parcels has its own widths
    fv = v / lv + hash01(iu, ident, seed + 9)
    iv = np.floor(fv).astype(np.int64)
    pid_x, pid_y = iu * 7919 + ident, iv
    row_m = d["row_m"][ident].astype(np.float32)
    along = np.where(hash01(pid_x, pid_y, seed + 23) < 0.5, u, v)
    de = np.minimum(
        np.minimum(fu - iu, 1 - (fu - iu)) * lu, np.minimum(fv - iv, 1 - (fv - iv)) * lv
    )
    return {
        "pid": (pid_x, pid_y),
        "rows": 0.5 + 0.5 * np.sin(np.float32(2 * np.pi) * along / row_m),
        "bund": 1 - smoothstep((de - 0.3) / 0.7),
        "track": (1 - smoothstep((edge - 1.0) / 1.0)) * d["track"][ident].astype(np.float32),
        "patchy": fbm_grid(xs, ys, (35.0, 11.0, 3.0), seed + 29),
    }


def field_colours(lay: dict[str, Any], epoch: EpochParams, seed: int, crop_change: float) -> F32:
    """Colour (4, row, col) of agricultural parcels in one epoch (crops change between epochs)."""
    pid_x, pid_y = lay["pid"]
    h_type = hash01(pid_x, pid_y, seed + 11)
    h_bright = hash01(pid_x, pid_y, seed + 19)
    if epoch.crop_salt:
        changed = hash01(pid_x, pid_y, seed + 13 + epoch.crop_salt) < crop_change
        h_type = np.where(changed, hash01(pid_x, pid_y, seed + 17 + epoch.crop_salt), h_type)
        h_bright = np.where(changed, hash01(pid_x, pid_y, seed + 19 + epoch.crop_salt), h_bright)
    kind = np.minimum(np.searchsorted(CROP_P / CROP_P[-1], h_type), len(CROPS) - 1)
    table = np.stack([colour(c, epoch.season) for c in CROPS])  # (k, 4)
    bright = 0.85 + 0.3 * h_bright
    bright *= 0.78 + 0.44 * lay["patchy"]
    row_amp = np.where(kind <= 2, np.float32(0.14), np.float32(0.07)) * np.float32(
        1 - 0.5 * epoch.season
    )
    bright *= 1 - row_amp * lay["rows"]
    bright *= 1 - 0.12 * lay["bund"]
    out = np.empty((4, *kind.shape), np.float32)
    for b in range(4):
        out[b] = table[:, b][kind] * bright
    return out


def plan_villages(
    frame: Frame, rng: np.random.Generator, prm: dict[str, Any], half_width_m: float
) -> F64:
    """Village centres (k, 3): x, y, radius."""
    n = rng.poisson(prm["villages_per_km"] * frame.length_m / 1000.0)
    s = rng.uniform(0, frame.length_m, n)
    side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    off = side * (prm["river_half_m"] + rng.uniform(80, max(81.0, half_width_m * 0.9), n))
    xy = frame_xy(frame, s, off)
    return np.column_stack([xy, rng.uniform(60, 180, n)])


def village_splats(
    villages: F64,
    rng: np.random.Generator,
    new_frac: float,
    epochs: tuple[EpochParams, EpochParams],
    step_m: float,
) -> tuple[dict[str, Splats], dict[str, Splats]]:
    """Houses (roof + cast shadow) of all villages for each epoch; some houses only in *after*."""
    roofs: list[list[Splats]] = [[], []]
    shadows: list[list[Splats]] = [[], []]
    roof_cols = np.array(
        [
            (0.55, 0.25, 0.2, 0.35),
            (0.25, 0.35, 0.55, 0.3),
            (0.55, 0.55, 0.53, 0.5),
            (0.35, 0.33, 0.3, 0.3),
        ],
        np.float32,
    )
    for vx, vy, rad in villages:
        grid_ang = rng.uniform(0, np.pi)
        n_houses = int(rng.integers(8, max(9, int(rad**2 / 350))))
        for _ in range(n_houses):
            r = rad * np.sqrt(rng.random())
            t = rng.uniform(0, 2 * np.pi)
            cx, cy = vx + r * np.cos(t), vy + r * np.sin(t)
            L, W = rng.uniform(7, 16), rng.uniform(5, 8)
            ang = grid_ang + rng.choice([0, np.pi / 2]) + rng.normal(0, 0.05)
            height = rng.uniform(3, 5)
            col = roof_cols[rng.integers(0, len(roof_cols))] * np.float32(rng.uniform(0.8, 1.2))
            is_new = rng.random() < new_frac
            u = np.array([np.cos(ang), np.sin(ang)])
            v = np.array([-u[1], u[0]])
            corners = np.array([[cx, cy]]) + np.array(
                [a * L / 2 * u + b * W / 2 * v for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
            )
            for e, ep in enumerate(epochs):
                if is_new and e == 0:
                    continue
                shadow = shapely.MultiPoint(
                    np.vstack([corners, corners + height * ep.shadow_vec])
                ).convex_hull
                shadows[e].append(polygon_samples(shadow, (0, 0, 0, 0), step_m=step_m, opacity=0.6))
                sun = np.array(
                    [np.sin(np.radians(ep.sun_azimuth_deg)), np.cos(np.radians(ep.sun_azimuth_deg))]
                )
                for half in (-1, 1):  # gable roof: the sunlit half is brighter
                    quad = np.array([[cx, cy]]) + np.array(
                        [
                            a * L / 2 * u + b * W / 2 * v
                            for a, b in ((-1, 0), (1, 0), (1, half), (-1, half))
                        ]
                    )
                    lit = 1.0 + 0.18 * half * float(np.dot(v, sun))
                    roofs[e].append(
                        polygon_samples(shapely.Polygon(quad), col * np.float32(lit), step_m=step_m)
                    )
    return (
        {"house_shadow": concat(shadows[0]), "roof": concat(roofs[0])},
        {"house_shadow": concat(shadows[1]), "roof": concat(roofs[1])},
    )


def _walk(rng: np.random.Generator, start: F64, heading: float, length: float) -> F64:
    n = max(2, int(length / 20))
    turn = np.cumsum(rng.normal(0, 0.06, n)) + heading
    turn = np.convolve(turn, np.ones(5) / 5, mode="same")
    turn[:3], turn[-3:] = turn[3], turn[-4]
    step = np.column_stack([np.cos(turn), np.sin(turn)]) * 20.0
    return start + np.vstack([[0, 0], np.cumsum(step, axis=0)])


def _land_runs(xy: F64, in_water: Any, rng: np.random.Generator) -> list[F64]:
    """Split a polyline where it enters the river (roads stop at the bank; a few become bridges)."""
    dense = resample_line(xy, 10.0)
    wet = in_water(dense)
    if not wet.any() or rng.random() < 0.15:
        return [dense]
    runs, start = [], None
    for i, w in enumerate(np.append(wet, True)):
        if not w and start is None:
            start = i
        elif w and start is not None:
            if i - start >= 3:
                runs.append(dense[start:i])
            start = None
    return runs


def plan_roads(
    frame: Frame,
    rng: np.random.Generator,
    prm: dict[str, Any],
    half_width_m: float,
    step_m: float,
    in_water: Any,
) -> Splats:
    """Roads and tracks at all orientations plus a road along each bank (drawn in both epochs)."""
    parts: list[Splats] = []
    gravel = np.array([0.62, 0.58, 0.52, 0.55], np.float32)
    asphalt = np.array([0.34, 0.34, 0.34, 0.30], np.float32)
    dirt = np.array([0.52, 0.45, 0.36, 0.45], np.float32)
    s = np.arange(0, frame.length_m, 20.0)
    for side in (-1.0, 1.0):
        if rng.random() < 0.8:
            off = side * (
                prm["river_half_m"] + rng.uniform(60, max(61.0, min(700, half_width_m * 0.8)))
            )
            wob = np.convolve(rng.normal(0, 8, s.size), np.ones(15) / 15, mode="same")
            xy = frame_xy(frame, s, off + np.cumsum(wob) * 0.2)
            parts.append(
                _road(xy, rng.uniform(4, 7), gravel if rng.random() < 0.6 else asphalt, step_m)
            )
    n = rng.poisson(prm["roads_per_km"] * frame.length_m / 1000.0)
    for _ in range(n):
        s0 = rng.uniform(0, frame.length_m)
        side = rng.choice([-1.0, 1.0])
        start = frame_xy(
            frame, [s0], [side * (prm["river_half_m"] + rng.uniform(30, max(31.0, half_width_m)))]
        )[0]
        xy = _walk(rng, start, rng.uniform(0, 2 * np.pi), rng.uniform(300, 2500))
        if rng.random() < 0.5:
            parts.append(_road(xy, rng.uniform(3, 6), gravel, step_m))
        else:
            parts.append(
                stroke_samples(xy, rng.uniform(1.5, 3.0), dirt, step_m=step_m, opacity=0.8)
            )
    return concat(parts)


def _road(xy: F64, width: float, col: F32, step_m: float) -> Splats:
    shoulder = stroke_samples(xy, width + 2.0, col * np.float32(0.85), step_m=step_m, opacity=0.5)
    return concat([shoulder, stroke_samples(xy, width, col, step_m=step_m)])


def land_layout(
    xs: F64, ys: F64, dist_edge: F32, prk: F32, seed: int, forest_bias: float
) -> dict[str, Any]:
    """Per-pixel natural land cover shared by both epochs (forest weight, crowns, scrub)."""
    lf = fbm_grid(xs, ys, (700.0, 260.0, 90.0, 30.0), seed + 31)
    hill = smoothstep((dist_edge - 80.0) / 600.0)
    score = lf + 0.3 * hill + forest_bias - 0.12 * prk * hill
    crown = noise_grid(xs, ys, 3.5, seed + 37) * 0.6 + noise_grid(xs, ys, 1.7, seed + 41) * 0.4
    return {
        "lf": lf,
        "forest": smoothstep((score - 0.6) / 0.04),
        "crown": crown,
        "crown_gx": np.gradient(crown, axis=1),
        "crown_gy": -np.gradient(crown, axis=0),
        "scrub": noise_grid(xs, ys, 6.0, seed + 43),
        "open": smoothstep((hill * (0.4 + 0.6 * prk) - 0.25) / 0.2),
    }


def land_colours(lay: dict[str, Any], epoch: EpochParams) -> F32:
    """Colour (4, row, col) of non-field land (forest, grass, bare hills) in one epoch."""
    sun = np.radians(epoch.sun_azimuth_deg)
    crown, forest, scrub = lay["crown"], lay["forest"], lay["scrub"]
    if "wg" not in lay:  # epoch-independent weights, computed once per block
        spots = 1 - 0.45 * smoothstep((scrub - 0.62) / 0.08) * (1 - forest)
        op, nf = lay["open"], 1 - forest
        lay["wg"] = (0.8 + 0.4 * scrub) * spots * (1 - op) * nf
        lay["wb"] = (0.85 + 0.3 * lay["lf"]) * spots * op * nf
        lay["dark"] = 1.0 - 0.5 * smoothstep((0.35 - crown) / 0.2)
    shade = lay["dark"] + np.float32(1.6 * np.sin(sun)) * lay["crown_gx"]
    shade += np.float32(1.6 * np.cos(sun)) * lay["crown_gy"]
    shade *= forest
    fc, gc, bc = (
        colour("forest", epoch.season),
        colour("grass", epoch.season),
        colour("bare_hill", epoch.season),
    )
    out = np.empty((4, *crown.shape), np.float32)
    for b in range(4):
        out[b] = fc[b] * shade + gc[b] * lay["wg"] + bc[b] * lay["wb"]
    return out
