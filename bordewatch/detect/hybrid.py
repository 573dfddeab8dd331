"""The hybrid method: classical geometry, plus the fences only the network sees and the towers
it confirms.

``detect_hybrid(pair, config)`` (registered as ``"hybrid"``) runs the classical detectors and the
network on the same tile, then

1. keeps every classical detection as it is (no veto: :data:`KEEP_SUPPORT` is 0 for every class);
2. adds the network's own *new* fences where it is confident (score ≥ :data:`ADD_CONFIDENCE`)
   and no classical fence lies within :data:`MATCH_M` (only the parts farther away, if they are
   still long enough). Network lanes and towers are not added;
3. adds the classical new-tower candidates that the classical tests after the first ones
   dropped, where the network's tower probability within 3 m reaches :data:`TOWER_SUPPORT`
   (:func:`confirmed_towers`): the classical path places the tower (a new compact shadow with a
   roof beside it, where the *before* could have shown it absent), the network vouches for it.

Why, measured on tuning seeds 21–27 (``demo`` 1 m, ``hard`` 0.5 m, ``nothing_new``; 1 km each,
see ``models/README.md``): the network's veto of classical fences (support ≥ 0.15) cost 25 F1
points on ``demo`` seeds 24–27 (recall 0.42 → 0.18) while gaining 17 on seeds 21–23; its
confident towers added 1,512 false new towers on four ``hard`` scenes (tower F1 0.40 → 0.01);
its lanes miss most lanes under a hazy *after* (their veto cost 6–45 points on ``hard``). Its
confident fences are what it adds: new-fence F1 +1 to +6 points on ``demo`` and +3 to +10 on
``hard``, for 32 m more false new fence per km on ``nothing_new`` (at a 0.6 bar: 115 m). Checked
after choosing, on seeds 28–31: fence F1 +6 (``demo``) and +8 (``hard``), but 131 m/km more
false new fence on ``nothing_new`` (98 → 229 m/km).
:data:`KEEP_SUPPORT` (a veto) and :data:`ADD_CONFIDENCE` stay per class for re-tuning.

The change map is the mean of the classical change score and the network's new-object probability.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import shapely
from scipy import ndimage
from shapely.geometry import Point

from bordewatch.detect import register_method
from bordewatch.detect.classical import TOWER_PARAMS, detect_classical, given_shadow_dir
from bordewatch.detect.model import (
    CLASSES,
    any_change,
    detections_from_proba,
    load_model,
    predict_tile,
)
from bordewatch.detect.posts import new_tower_candidates, shadow_half_dir
from bordewatch.imagery import TilePair
from bordewatch.results import DetectConfig, Detection, DetectorOutput
from bordewatch.vectorize import to_tile_crs

__all__ = [
    "ADD_CONFIDENCE",
    "KEEP_SUPPORT",
    "MATCH_M",
    "TOWER_SUPPORT",
    "confirmed_towers",
    "detect_hybrid",
    "model_support",
]

KEEP_SUPPORT: dict[str, float] = {"fence": 0.0, "patrol_lane": 0.0, "watchtower": 0.0}
"""Minimum network support, per class, for keeping a classical ``new`` detection (0: no veto)."""
ADD_CONFIDENCE: dict[str, float] = {"fence": 0.8, "patrol_lane": math.inf, "watchtower": math.inf}
"""Minimum network score, per class, for adding a detection the classical path missed."""
MATCH_M = 5.0
"""Distance within which a network detection duplicates a classical one."""
TOWER_SUPPORT = 0.5
"""Least network tower probability (within 3 m) that confirms a classical new-tower candidate.

On the classical candidates past the roof bar of tuning scenes (in memory, per tile; demo
600-603, the embedded demo (seed 0), hoeryong 600-601, nothing_new 600-603, hard 540-541) the
network's probability was >= 0.5 at 25 of 47 true and 6 of 704 false ones. Through the pipeline
(2 km scenes; the embedded demo 10 km) new towers right / false, classical -> hybrid: demo
600-603 1 / 0 -> 6 / 1, hoeryong 8 / 0 -> 11 / 0, embedded demo 10 / 1 -> 10 / 5, nothing_new
0 / 0 -> 0 / 0, hard 540-541 0 / 4 -> 0 / 4. The bar hardly matters (0.3-0.9 changed at most
one). Held-out: ``benchmarks/ACCURACY.md``."""
_CLASS_CHANNEL = {name: i for i, name in enumerate(CLASSES)}


def model_support(
    det: Detection, proba: npt.NDArray[np.float32], pair: TilePair, *, reach_px: int = 2
) -> float:
    """Network probability for ``det``'s class near its geometry (0–1).

    Lines: mean along the line (sampled every pixel) of the class probability max-filtered over
    ``2 * reach_px + 1`` pixels; points: that filtered probability at the point.
    """
    prob = ndimage.maximum_filter(proba[_CLASS_CHANNEL[det.cls]], size=2 * reach_px + 1)
    inv = ~pair.tile.affine
    geom = det.geometry
    if geom.geom_type == "Point":
        pts = np.array([[geom.x, geom.y]])
    else:
        n = max(2, int(np.ceil(geom.length / pair.gsd_m)) + 1)
        lines = [geom] if geom.geom_type == "LineString" else list(geom.geoms)
        pts = np.vstack(
            [
                shapely.get_coordinates(
                    shapely.line_interpolate_point(ln, np.linspace(0, ln.length, n))
                )
                for ln in lines
            ]
        )
    a, b, c, d, e, f = inv.a, inv.b, inv.c, inv.d, inv.e, inv.f
    col = a * pts[:, 0] + b * pts[:, 1] + c - 0.5
    row = d * pts[:, 0] + e * pts[:, 1] + f - 0.5
    r = np.clip(np.rint(row).astype(int), 0, prob.shape[0] - 1)
    k = np.clip(np.rint(col).astype(int), 0, prob.shape[1] - 1)
    return float(np.clip(prob[r, k].mean(), 0.0, 1.0))


def _model_only(
    model_dets: tuple[Detection, ...], classical: list[Detection], config: DetectConfig
) -> list[Detection]:
    added: list[Detection] = []
    for det in model_dets:
        if det.score < ADD_CONFIDENCE.get(det.cls, math.inf):
            continue
        same = [c.geometry for c in classical if c.cls == det.cls]
        if not same:
            added.append(det)
            continue
        near = shapely.union_all([shapely.buffer(g, MATCH_M) for g in same])
        if det.cls == "watchtower":
            if not near.contains(det.geometry):
                added.append(det)
            continue
        rest = det.geometry.difference(near)
        if rest.is_empty or rest.length < config.min_fence_length_m:
            continue
        parts = [g for g in getattr(rest, "geoms", [rest]) if g.length >= config.min_fence_length_m]
        if parts:
            geom = parts[0] if len(parts) == 1 else shapely.MultiLineString(parts)
            added.append(Detection(det.cls, "new", det.score, geom))
    return added


def confirmed_towers(
    pair: TilePair, config: DetectConfig, proba: npt.NDArray[np.float32], kept: list[Detection]
) -> list[Detection]:
    """Classical new-tower candidates the network confirms, none within :data:`MATCH_M` of a
    tower in ``kept`` or of one another; scored by the network's support."""
    affine = pair.tile.affine
    candidates = new_tower_candidates(
        pair.before,
        pair.after,
        pair.valid,
        pair.bands,
        pair.gsd_m,
        TOWER_PARAMS,
        north=shadow_half_dir(affine, pair.tile.latitude),
        shadow_dir=given_shadow_dir(config, affine),
    )
    towers = [d.geometry for d in kept if d.cls == "watchtower"]
    reach = max(1, round(3.0 / pair.gsd_m))
    out: list[Detection] = []
    for t in candidates:
        point = to_tile_crs(Point(t.col, t.row), affine)
        if any(point.distance(g) <= MATCH_M for g in towers):
            continue
        probe = Detection("watchtower", "new", 0.0, point)
        support = model_support(probe, proba, pair, reach_px=reach)
        if support >= TOWER_SUPPORT:
            out.append(Detection("watchtower", "new", round(support, 4), point))
            towers.append(point)
    return out


def detect_hybrid(pair: TilePair, config: DetectConfig) -> DetectorOutput:
    """Method ``"hybrid"``: classical detections filtered and completed by the network."""
    classical = detect_classical(pair, config)
    proba = predict_tile(pair, load_model(config.model_path, device=config.device))
    kept: list[Detection] = []
    for det in classical.detections:
        if det.status != "new" or KEEP_SUPPORT.get(det.cls, 0.0) <= 0.0:
            kept.append(det)  # as the classical path found it (lanes: no veto, same score)
            continue
        support = model_support(det, proba, pair)
        if support >= KEEP_SUPPORT.get(det.cls, 0.0):
            score = round(0.5 * (det.score + support), 4)
            kept.append(Detection(det.cls, det.status, score, det.geometry))
    model_dets = detections_from_proba(proba, pair, min_fence_length_m=config.min_fence_length_m)
    kept += _model_only(model_dets, kept, config)
    kept += confirmed_towers(pair, config, proba, kept)
    learned = any_change(proba)
    change = np.where(
        np.isfinite(classical.change), 0.5 * (classical.change + learned), np.nan
    ).astype(np.float32)
    change[~pair.valid] = np.nan
    return DetectorOutput(
        detections=tuple(kept), change=change, sun_azimuth_deg=classical.sun_azimuth_deg
    )


register_method("hybrid", detect_hybrid)
