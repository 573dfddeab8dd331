"""The classical method: explainable filters on both epochs, matched between epochs.

``detect_classical(pair, config)`` is registered as ``"classical"`` in :mod:`bordewatch.detect`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import shapely
from affine import Affine
from shapely.geometry import Point

from bordewatch.detect.change import change_score
from bordewatch.detect.evidence import (
    BeltEvidence,
    EpochEvidence,
    LineEvidence,
    Scales,
    compute_evidence,
    line_evidence,
    scales_for_gsd,
    to_gray,
)
from bordewatch.detect.lines import (
    LineParams,
    LinePiece,
    classify_lines,
    epoch_lines,
    existing_lines,
    follows_edge,
    peak_lines,
    smoothed_units,
    status_of_changed,
)
from bordewatch.detect.posts import (
    TowerParams,
    detect_towers,
    north_pixel_dir,
    pixel_dir_to_azimuth,
    sun_azimuth_to_pixel_dir,
)
from bordewatch.results import DetectConfig, Detection, DetectorOutput
from bordewatch.vectorize import to_tile_crs

if TYPE_CHECKING:
    from bordewatch.imagery import TilePair

__all__ = [
    "FENCE_MAX_GSD_M",
    "TOWER_MAX_GSD_M",
    "detect_classical",
    "fence_params",
    "lane_params",
]

log = logging.getLogger(__name__)

FENCE_MAX_GSD_M = 5.0
"""At this pixel size and coarser fences are invisible: none is reported (logged per tile)."""
TOWER_MAX_GSD_M = 5.0
"""At this pixel size and coarser towers (2–8 m) are invisible: none is reported."""
LANE_MAX_GSD_M = 8.0
"""At this pixel size and coarser only the change score is returned."""

TOWER_PARAMS = TowerParams()
BELT = "fence-belt"
"""Internal class of new fences found by the belt filter (reported as ``fence``)."""
LANE_EDGE_M = 3.0
THIN_LANE_EDGE = 2.0 / 3.0
"""Thin-line new fences are cut within this fraction of ``LANE_EDGE_M`` of a new lane (its
straight edges answer the thin-line filter; a real fence beside the lane lies farther out)."""
"""New-fence evidence within this distance of a new patrol lane's centre line is the lane's."""


def fence_params(config: DetectConfig) -> LineParams:
    """Fence/wall thresholds (background units of the oriented line evidence)."""
    return LineParams(
        high=FENCE_HIGH,
        low=FENCE_LOW,
        present=FENCE_PRESENT,
        min_length_m=config.min_fence_length_m,
    )


def lane_params(config: DetectConfig) -> LineParams:
    """Patrol-lane thresholds."""
    return LineParams(
        high=4.0, low=2.0, present=4.0, min_length_m=config.min_fence_length_m, max_gap_m=12.0
    )


FENCE_HIGH, FENCE_LOW, FENCE_PRESENT = 6.0, 3.0, 4.0


def belt_params(config: DetectConfig) -> LineParams:
    """Thresholds of the belt-scale band of change (background units)."""
    return LineParams(
        high=BELT_HIGH,
        low=BELT_LOW,
        present=BELT_PRESENT,
        min_length_m=max(BELT_MIN_LENGTH_M, config.min_fence_length_m),
    )


BELT_HIGH, BELT_LOW, BELT_PRESENT = 6.0, 5.0, 4.0
BELT_MIN_LENGTH_M = 60.0
"""Bands of change shorter than this are mostly crop strips (fences cross whole tiles)."""


def _to_full(line: shapely.LineString, f: float) -> shapely.LineString:
    """Working-grid pixel coordinates to full-resolution pixel coordinates."""
    if f == 1:
        return line
    return shapely.transform(line, lambda xy: (xy + 0.5) * f - 0.5)


def _belt_fences(be: BeltEvidence, params: LineParams, gsd_b: float) -> list[LinePiece]:
    changed = peak_lines(be.diff, be.peak_diff, params, gsd_b)
    pieces = status_of_changed(changed, be.after, be.before, be.diff, params, gsd_b)
    return [p for p in pieces if p.status == "new"]


def _fences(le: LineEvidence, params: LineParams, gsd_w: float) -> list[LinePiece]:
    changed = peak_lines(le.fence_diff, le.fence_peak_diff, params, gsd_w)
    pieces = status_of_changed(
        changed, le.fence_after, le.fence_before, le.fence_diff, params, gsd_w
    )
    inventory = peak_lines(le.fence_after, le.fence_peak_after, params, gsd_w)
    return pieces + existing_lines(
        inventory, le.fence_after, le.fence_before, le.fence_diff, params, gsd_w
    )


def _drop_lane_edges(
    items: list[tuple[str, LinePiece]], reach_px: float, min_px: float
) -> list[tuple[str, LinePiece]]:
    """Cut new-fence pieces out where they run on a new patrol lane.

    A new lane changes a band as wide as a cleared belt, so the belt filter (class ``BELT``)
    answers on it within ``reach_px``; its edges answer the thin-line filter closer in. What is left of a piece must still be
    ``min_px`` long. Returns the items with ``BELT`` renamed ``fence``.
    """
    lanes = [p.line for c, p in items if c == "patrol_lane" and p.status == "new"]
    if not lanes:
        return [("fence" if c == BELT else c, p) for c, p in items]
    near = shapely.union_all(lanes)
    zones = {BELT: near.buffer(reach_px), "fence": near.buffer(reach_px * THIN_LANE_EDGE)}
    out: list[tuple[str, LinePiece]] = []
    for cls, p in items:
        if cls not in zones or p.status != "new":
            out.append(("fence" if cls == BELT else cls, p))
            continue
        zone = zones[cls]
        if not p.line.intersects(zone):
            out.append(("fence", p))
            continue
        rest = p.line.difference(zone)
        for part in shapely.get_parts(rest):
            if isinstance(part, shapely.LineString) and part.length >= min_px:
                out.append(("fence", replace(p, line=part)))
    return out


EDGE_STEP = 1.5
"""A fence piece along which either epoch shows a brightness step of this many MAD units
(road side, field edge, bank) over ``EDGE_FRAC`` of its length is that edge, not a fence."""
EDGE_FRAC = 0.5


STRAIGHT_SHORT = 0.98
"""A fence piece shorter than ``LONG_M`` is nearly straight: chord / length at least this."""
STRAIGHT_LONG = 0.9
LONG_M = 150.0


def _straight(line: shapely.LineString, gsd: float) -> bool:
    """Whether a fence piece is straight enough (texture and field mosaics wiggle)."""
    c = shapely.get_coordinates(line)
    if line.length <= 0 or len(c) < 2:
        return False
    ratio = float(np.hypot(*(c[-1] - c[0]))) / line.length
    return ratio >= (STRAIGHT_SHORT if line.length * gsd < LONG_M else STRAIGHT_LONG)


def _drop_edge_fences(
    items: list[tuple[str, LinePiece]], pair: TilePair, gsd: float
) -> list[tuple[str, LinePiece]]:
    """Drop fence pieces (any status) that wiggle or follow a step edge of either epoch.

    A fence is a thin line: both sides of it look alike. Lines along road sides, field edges
    and banks are what misregistration, crops and water levels put into the difference and
    into the per-epoch inventory, and crop-strip boundaries that changed. Every status is
    tested against both epochs (a thin line of the epoch itself is exempt, see
    :func:`~bordewatch.detect.lines.edge_steps`).
    """
    if not any(c == "fence" for c, _ in items):
        return items
    sigma = max(0.5, 1.0 / gsd)
    zb = smoothed_units(to_gray(pair.before, pair.bands), pair.valid, sigma)
    za = None
    out = []
    for cls, p in items:
        if cls != "fence":
            out.append((cls, p))
            continue
        if not _straight(p.line, gsd):
            continue
        if follows_edge(p.line, zb, gsd, EDGE_STEP, frac=EDGE_FRAC):
            continue
        if za is None:
            za = smoothed_units(to_gray(pair.after, pair.bands), pair.valid, sigma)
        if follows_edge(p.line, za, gsd, EDGE_STEP, frac=EDGE_FRAC):
            continue
        out.append((cls, p))
    return out


def _line_detections(
    cls: str,
    before: list,
    after: list,
    ev_b: np.ndarray,
    ev_a: np.ndarray,
    change: np.ndarray,
    params: LineParams,
    gsd: float,
) -> list[tuple[str, LinePiece]]:
    """Per-epoch lines matched between epochs (patrol lanes: strong, wide, per-epoch visible)."""
    pieces = classify_lines(after, ev_a, ev_b, change, params, gsd, absent_status="new")
    gone = classify_lines(before, ev_b, ev_a, change, params, gsd, absent_status="removed")
    return [(cls, p) for p in pieces] + [(cls, p) for p in gone if p.status == "removed"]


def _shadow(ev: EpochEvidence, scales: Scales, config: DetectConfig, affine: Affine):
    """Known shadow direction (``--sun-azimuth``) or None: estimated by posts.find_towers."""
    if config.sun_azimuth_deg is not None:
        return sun_azimuth_to_pixel_dir(config.sun_azimuth_deg, affine)
    return None


def _towers(ev_b, ev_a, scales, config, affine, pair):
    """Towers with status and the sun azimuths used per epoch (posts.detect_towers)."""
    dirs = (_shadow(ev_b, scales, config, affine), _shadow(ev_a, scales, config, affine))
    out, used = detect_towers(
        pair.before,
        pair.after,
        pair.valid,
        pair.bands,
        scales.gsd_m,
        TOWER_PARAMS,
        north=north_pixel_dir(affine),
        shadow_dirs=dirs,
    )
    az = tuple(None if d is None else round(pixel_dir_to_azimuth(d, affine), 1) for d in used)
    return out, az


def detect_classical(pair: TilePair, config: DetectConfig) -> DetectorOutput:
    """Detect fences, patrol lanes and towers in both epochs of a tile and match them.

    Parameters
    ----------
    pair : TilePair
    config : DetectConfig

    Returns
    -------
    DetectorOutput
        Detections in the tile CRS, the change score, and the sun azimuths used per epoch.
    """
    gsd = float(pair.tile.gsd_m)
    affine = pair.tile.affine
    change = change_score(pair.before, pair.after, pair.valid, gsd_m=gsd)
    if gsd >= LANE_MAX_GSD_M or not pair.valid.any():
        log.info("tile %s: %.1f m pixels: no infrastructure detection", pair.tile.id, gsd)
        return DetectorOutput(detections=(), change=change)
    scales = scales_for_gsd(gsd)
    le = line_evidence(pair.before, pair.after, pair.valid, pair.bands, scales)
    f = le.factor
    gsd_w = gsd * f
    items: list[tuple[str, LinePiece]] = []
    if gsd < FENCE_MAX_GSD_M:
        items += [("fence", p) for p in _fences(le, fence_params(config), gsd_w)]
        be = le.belt
        bp = belt_params(config)
        items += [
            (BELT, replace(p, line=_to_full(p.line, be.factor / f)))
            for p in _belt_fences(be, bp, gsd * be.factor)
        ]
    else:
        log.info("tile %s: %.1f m pixels: fences and towers are invisible", pair.tile.id, gsd)
    ev_b = compute_evidence(pair.before, pair.valid, pair.bands, scales)
    ev_a = compute_evidence(pair.after, pair.valid, pair.bands, scales)
    lp = lane_params(config)
    items += _line_detections(
        "patrol_lane",
        epoch_lines(ev_b.lane, lp, gsd),
        epoch_lines(ev_a.lane, lp, gsd),
        ev_b.lane,
        ev_a.lane,
        change,
        lp,
        gsd,
    )
    full = [(cls, replace(p, line=_to_full(p.line, f))) for cls, p in items]
    kept = _drop_lane_edges(full, LANE_EDGE_M / gsd, config.min_fence_length_m / gsd)
    kept = _drop_edge_fences(kept, pair, gsd)
    dets = [
        Detection(cls, p.status, round(p.score, 4), to_tile_crs(p.line, affine)) for cls, p in kept
    ]
    azimuths: tuple[float | None, float | None] = (None, None)
    if gsd < TOWER_MAX_GSD_M:
        towers, azimuths = _towers(ev_b, ev_a, scales, config, affine, pair)
        dets += [
            Detection("watchtower", st, sc, to_tile_crs(Point(t.col, t.row), affine))
            for st, sc, t in towers
        ]
    return DetectorOutput(detections=tuple(dets), change=change, sun_azimuth_deg=azimuths)
