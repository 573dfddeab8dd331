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
from rasterio.features import rasterize
from shapely.geometry import Point

from bordewatch.detect.change import change_score
from bordewatch.detect.evidence import (
    BeltEvidence,
    LaneEvidence,
    LineEvidence,
    Scales,
    block_mean,
    lane_evidence,
    line_evidence,
    scales_for_gsd,
)
from bordewatch.detect.lines import (
    LineParams,
    LinePiece,
    change_at_line,
    change_window,
    classify_lines,
    epoch_lines,
    existing_lines,
    follows_edge,
    log_contrast,
    peak_lines,
    smoothed_log_change,
    smoothed_units,
    status_of_changed,
    strip_half_width,
    texture_contrast,
)
from bordewatch.detect.posts import (
    Tower,
    TowerParams,
    detect_towers,
    pixel_dir_to_azimuth,
    shadow_half_dir,
    sun_azimuth_to_pixel_dir,
)
from bordewatch.memory import release_free_memory
from bordewatch.results import DetectConfig, Detection, DetectorOutput
from bordewatch.vectorize import sample_along, to_tile_crs

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


FENCE_HIGH, FENCE_LOW, FENCE_PRESENT = 6.0, 2.5, 4.0
LONG_FENCE_HIGH = 4.0
"""A ridge of the difference reaching only this (not ``FENCE_HIGH``) is kept where it runs at
least ``LONG_FENCE_FACTOR`` times the minimum fence length: the evidence is already a mean
over ~16 m, and a long straight faint line is as unlikely in noise as a short strong one."""
LONG_FENCE_FACTOR = 2.0


def belt_params(config: DetectConfig) -> LineParams:
    """Thresholds of the belt-scale band of change (background units)."""
    return LineParams(
        high=BELT_HIGH,
        low=BELT_LOW,
        present=BELT_PRESENT,
        min_length_m=max(BELT_MIN_LENGTH_M, config.min_fence_length_m),
        max_gap_m=BELT_MAX_GAP_M,
    )


BELT_HIGH, BELT_LOW, BELT_PRESENT = 6.0, 5.0, 4.0
BELT_MIN_LENGTH_M = 60.0
"""Bands of change shorter than this are mostly crop strips (fences cross whole tiles)."""
BELT_MAX_GAP_M = 16.0
"""Aligned gaps in a belt's ridge bridged when tracing: a belt crossing a field whose crop
changed alike on both sides (or a short cloud shadow) loses its contrast there for a few grid
pixels, and the pieces either side are often each shorter than ``BELT_MIN_LENGTH_M``."""


def _to_full(line: shapely.LineString, f: float) -> shapely.LineString:
    """Working-grid pixel coordinates to full-resolution pixel coordinates."""
    if f == 1:
        return line
    return shapely.transform(line, lambda xy: (xy + 0.5) * f - 0.5)


def _belt_fences(
    be: BeltEvidence, params: LineParams, gsd_b: float, keep_out: np.ndarray | None = None
) -> list[LinePiece]:
    peaks = be.peak_diff if keep_out is None else be.peak_diff & ~keep_out
    changed = peak_lines(be.diff, peaks, params, gsd_b)
    pieces = status_of_changed(changed, be.after, be.before, be.diff, params, gsd_b)
    new = [p for p in pieces if p.status == "new"]
    if AFTER_ONLY_BELTS and be.peak_after is not None:
        ridge = be.peak_after if keep_out is None else be.peak_after & ~keep_out
        inventory = peak_lines(be.after, ridge, params, gsd_b)
        new += _absent_before(inventory, new, be.after, be.before, params, gsd_b)
    return new


def _fences(
    le: LineEvidence, params: LineParams, gsd_w: float, keep_out: np.ndarray | None = None
) -> list[LinePiece]:
    """Changed (new, upgraded, removed) and existing fence pieces on the working grid.

    ``keep_out`` (working grid) masks the ridge of the difference where a new patrol lane and
    its edges lie, so that a fence a few metres beside the lane is traced on its own instead
    of merging with the lane edge's ridge.
    """
    peaks = le.fence_peak_diff if keep_out is None else le.fence_peak_diff & ~keep_out
    changed = _strong_or_long(le.fence_diff, peaks, params, gsd_w)
    pieces = [
        replace(p, after_line=_mean_along(p.line, le.fence_after)) if p.status == "new" else p
        for p in status_of_changed(
            changed, le.fence_after, le.fence_before, le.fence_diff, params, gsd_w
        )
    ]
    inventory = peak_lines(le.fence_after, le.fence_peak_after, params, gsd_w)
    if AFTER_ONLY_FENCES:
        pieces += _absent_before(inventory, pieces, le.fence_after, le.fence_before, params, gsd_w)
    return pieces + existing_lines(
        inventory, le.fence_after, le.fence_before, le.fence_diff, params, gsd_w
    )


AFTER_ONLY_FENCES = True
"""Also take the *after* epoch's own fence lines that the *before* lacks as new candidates
(:func:`_absent_before`), beside the lines of the difference of the epochs.

Through the pipeline on tuning scenes (2 km each; hard seeds 540-543 at 0.5 m, three with snow
in the *after*; demo and nothing_new 600-605, hoeryong 600-601), with snow no longer taken for
cloud (:func:`bordewatch.imagery.haze_mask`): new fence F1 on hard 0.02 -> 0.26 with the thin
lines, 0.46 with the belts too (precision 0.82, recall 0.32); demo 0.40 -> 0.41, hoeryong 0.30
-> 0.31; no false new fence added on nothing_new."""
AFTER_ONLY_BELTS = True
"""The same for cleared belts (:func:`_belt_fences`, the belt evidence's own ridge of the
*after*)."""
AFTER_ONLY_CLEAR_M = 3.0
"""An after-only candidate is kept only where it lies farther than this from the difference's
new pieces (the same fence found twice)."""


def _absent_before(
    inventory: list[shapely.LineString],
    changed: list[LinePiece],
    after: np.ndarray,
    before: np.ndarray,
    params: LineParams,
    gsd: float,
) -> list[LinePiece]:
    """New pieces the *after* shows on its own and the *before* does not.

    The difference's evidence of a new line drowns where the *before* is busy and the *after*
    plain: a fence across fields in summer and across the same fields under snow leaves a
    difference whose background is all the summer fields. The *after* epoch's own lines
    (``inventory``, traced on its evidence ``after`` with the same thresholds) have no such
    background; pieces of them without *before* evidence (:func:`classify_lines`: below
    ``params.present`` and below half their *after* evidence, over ~12 m) are new candidates
    where no new piece of the difference (``changed``) lies. They pass the same tests
    afterwards as those: lane edges, step edges, change at the line, seen before, observable.
    No change-score support is required here (``change=None``: a neutral 0.5 enters the score);
    the change at the line is tested later. Lines only the *before* shows are not looked for this way: under
    snow every field edge of the *before* would read as removed.
    """
    found = classify_lines(inventory, after, before, None, params, gsd, absent_status="new")
    new = [p.line for p in changed if p.status == "new"]
    taken = shapely.union_all(new).buffer(AFTER_ONLY_CLEAR_M / gsd) if new else None
    min_px = params.min_length_m / gsd
    out = []
    for piece in found:
        if piece.status != "new":
            continue
        rest = piece.line if taken is None else piece.line.difference(taken)
        for part in shapely.get_parts(rest):
            if isinstance(part, shapely.LineString) and part.length >= min_px:
                out.append(replace(piece, line=part, after_line=_mean_along(part, after)))
    return out


def _strong_or_long(
    strength: np.ndarray, peaks: np.ndarray, params: LineParams, gsd: float
) -> list[shapely.LineString]:
    """Ridge lines reaching ``params.high``, and long ones reaching only ``LONG_FENCE_HIGH``.

    Both hysteresis passes share ``params.low``; a strong line also traced by the long pass is
    kept once (the long pass's version).
    """
    strong = peak_lines(strength, peaks, params, gsd)
    if LONG_FENCE_HIGH >= params.high:
        return strong
    long_params = replace(
        params, high=LONG_FENCE_HIGH, min_length_m=LONG_FENCE_FACTOR * params.min_length_m
    )
    long = peak_lines(strength, peaks, long_params, gsd)
    if not long:
        return strong
    taken = shapely.union_all(long).buffer(2.0)
    min_px = params.min_length_m / gsd
    out = list(long)
    for line in strong:
        rest = line.difference(taken)
        out += [
            part
            for part in shapely.get_parts(rest)
            if isinstance(part, shapely.LineString) and part.length >= min_px
        ]
    return out


def _mean_along(line: shapely.LineString, x: np.ndarray) -> float:
    """Mean of ``x`` along a pixel-coordinate line (nearest of the 3 x 3 maxima)."""
    _, v = sample_along(line, x, radius=1)
    return float(np.mean(v)) if v.size else 0.0


def _block_any(mask: np.ndarray, f: int) -> np.ndarray:
    """Whether any pixel of each f x f block is set (grids sharing their origin corner)."""
    if f == 1:
        return mask
    rows, cols = mask.shape
    pr, pc = (-rows) % f, (-cols) % f
    m = np.pad(mask, ((0, pr), (0, pc))) if pr or pc else mask
    return m.reshape(m.shape[0] // f, f, m.shape[1] // f, f).any(axis=(1, 3))


LANE_EDGE_MARGIN_M = 1.5
"""Thin-line new fences within this distance outside a new lane's edge are the edge's answer to
the thin-line filter (the response of a step sits about a filter width out, plus
misregistration); a fence beside a lane stands farther out."""
BELT_LANE_MARGIN_M = 1.0
"""Belt-filter new fences whose ridge lies on a new lane (within this margin of its edge) are the
lane's: the belt filter answers any band of cleared width."""
EXPLAINED_MARGIN_M = 1.0
"""Pixels within this distance of a lane's edge belong to the lane for the edge test."""


def _lane_strips(
    items: list[tuple[str, LinePiece]], za: np.ndarray, zb: np.ndarray, gsd: float
) -> list[tuple[str, shapely.LineString, float]]:
    """``(status, centre line, half-width px)`` of every patrol-lane piece (width measured in
    the epoch that shows it)."""
    out = []
    for cls, p in items:
        if cls == "patrol_lane":
            z = zb if p.status == "removed" else za
            out.append((p.status, p.line, strip_half_width(p.line, z, gsd)))
    return out


LANE_CLOSE_M = 2.0
"""New lanes closer than twice this are one bare area for the edge bands: a dark wire on the
centre line of a cleared strip splits the strip's lane response in two."""


def _edge_zone(
    strips: list[tuple[shapely.LineString, float]],
    margin_px: float,
    inner_px: float | None,
    close_px: float = 0.0,
) -> shapely.Geometry:
    """Where lane strips (centre line, half-width) have their edges.

    The strips are united and closed over ``close_px`` (neighbours that nearly touch become one
    area), then widened by ``margin_px``; with ``inner_px``, what lies more than ``inner_px``
    inside the area's boundary is left out, so only the edge bands remain and a line along the
    middle of a wide bare area stays free.
    """
    body = shapely.union_all([line.buffer(hw + close_px, cap_style="flat") for line, hw in strips])
    if close_px:
        body = body.buffer(-close_px)
    zone = body.buffer(margin_px)
    if inner_px is None:
        return zone
    return zone.difference(body.buffer(-inner_px))


def _strip_mask(
    strips: list[tuple[str, shapely.LineString, float]],
    shape: tuple[int, int],
    margin_px: float,
    inner_px: float | None = None,
    close_px: float = 0.0,
) -> np.ndarray | None:
    """Pixels of the lane strips (widened by ``margin_px``; only their edge bands with
    ``inner_px``, see :func:`_edge_zone`), or None when there is none."""
    if not strips:
        return None
    zone = _edge_zone([(line, hw) for _, line, hw in strips], margin_px, inner_px, close_px)
    if zone.is_empty:
        return None
    shapes = [(zone, 1)]
    # pixel centres are at integer coordinates: the raster grid starts half a pixel before
    return rasterize(
        shapes,
        out_shape=shape,
        transform=Affine.translation(-0.5, -0.5),
        fill=0,
        dtype="uint8",
    ).astype(bool)


def _drop_lane_edges(
    items: list[tuple[str, LinePiece]],
    strips: list[tuple[str, shapely.LineString, float]],
    gsd: float,
    min_px: float,
) -> list[tuple[str, LinePiece]]:
    """Cut new-fence pieces out where they run on or along the edge of a new patrol lane.

    A new lane changes a band as wide as a cleared belt, so the belt filter (class ``BELT``)
    answers on it; its edges answer the thin-line filter just outside it. The zones follow each
    lane's measured half-width. What is left of a piece must still be ``min_px`` long. Returns
    the items with ``BELT`` renamed ``fence``.
    """
    new = [(line, hw) for st, line, hw in strips if st == "new"]
    if not new:
        return [("fence" if c == BELT else c, p) for c, p in items]
    zones = {
        BELT: shapely.union_all([ln.buffer(hw + BELT_LANE_MARGIN_M / gsd) for ln, hw in new]),
        "fence": _edge_zone(
            new, LANE_EDGE_MARGIN_M / gsd, LANE_EDGE_MARGIN_M / gsd, LANE_CLOSE_M / gsd
        ),
    }
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


STRAIGHT_DEV_M = 1.5
"""A fence piece shorter than ``LONG_M`` strays at most this far (or ``STRAIGHT_DEV_FRAC`` of
its length) from the straight line through its ends: texture and field mosaics wiggle, a
fence is straight or gently curved (a skeleton's jag or short hook stays within it)."""
STRAIGHT_DEV_FRAC = 0.04
STRAIGHT_LONG = 0.9
"""A longer piece (which may follow a river bend) has chord / length at least this."""
LONG_M = 150.0


def _straight(line: shapely.LineString, gsd: float) -> bool:
    """Whether a fence piece is straight enough (texture and field mosaics wiggle)."""
    c = shapely.get_coordinates(line)
    if line.length <= 0 or len(c) < 2:
        return False
    chord = float(np.hypot(*(c[-1] - c[0])))
    if line.length * gsd >= LONG_M:
        return chord / line.length >= STRAIGHT_LONG
    if chord <= 0:
        return False
    d = c[-1] - c[0]
    dev = np.abs(d[0] * (c[:, 1] - c[0, 1]) - d[1] * (c[:, 0] - c[0, 0])) / chord
    return float(dev.max()) * gsd <= max(STRAIGHT_DEV_M, STRAIGHT_DEV_FRAC * line.length * gsd)


def _drop_edge_fences(
    items: list[tuple[str, LinePiece]],
    zb: np.ndarray,
    za: np.ndarray,
    gsd: float,
    explained: np.ndarray | None,
    lane_edges: shapely.Geometry | None = None,
) -> list[tuple[str, LinePiece]]:
    """Drop fence pieces (any status) that wiggle or follow a step edge of either epoch.

    A fence is a thin line: both sides of it look alike. Lines along road sides, field edges
    and banks are what misregistration, crops and water levels put into the difference and
    into the per-epoch inventory, and crop-strip boundaries that changed. Every status is
    tested against both epochs (a thin line of the epoch itself is exempt, see
    :func:`~bordewatch.detect.lines.edge_steps`); steps made by a patrol lane beside the
    fence (``explained``) are the lane's, not an edge the fence follows. A ``new`` fence
    brings its own surroundings (a cleared belt centred on it): in the after epoch only true
    steps count, while any structure at the place before (a road, lane or edge, where the
    difference has residuals) still does, unless the after epoch by itself shows a thin line
    along the piece (``LinePiece.after_line`` >= ``FENCE_PRESENT``): a new fence built where
    a belt was cleared along an old field or forest edge. An edge residual is no line of the
    after image alone, else the before image would show it too and the piece would not be
    new. A piece mostly within ``lane_edges`` (a lane and its edges) runs on the lane: its
    steps are not excused.
    """
    out = []
    for cls, p in items:
        if cls != "fence":
            out.append((cls, p))
            continue
        if not _straight(p.line, gsd):
            continue
        new = p.status == "new"
        on_lane = lane_edges is not None and (
            p.line.intersection(lane_edges).length > EDGE_FRAC * p.line.length
        )
        ex = None if on_lane else explained
        # a new line the after image shows by itself is not a residual of an old edge it runs
        # along (an unchanged edge shows alike in both epochs and is not new)
        seen = new and p.after_line >= FENCE_PRESENT
        tests = ((za, True),) if seen else ((zb, False), (za, new))
        if any(
            follows_edge(p.line, z, gsd, EDGE_STEP, frac=EDGE_FRAC, explained=ex, steps_only=only)
            for z, only in tests
        ):
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


def _lanes(
    ev_b: LaneEvidence, ev_a: LaneEvidence, change: np.ndarray, params: LineParams, gsd: float
) -> list[tuple[str, LinePiece]]:
    """Patrol lanes traced and matched on the lane maps' working grid, in full-resolution
    pixel coordinates."""
    f = ev_a.factor
    gsd_w = gsd * f
    change_w = change if f == 1 else block_mean(change, f)
    items = _line_detections(
        "patrol_lane",
        epoch_lines(ev_b.lane, params, gsd_w),
        epoch_lines(ev_a.lane, params, gsd_w),
        ev_b.lane,
        ev_a.lane,
        change_w,
        params,
        gsd_w,
    )
    return [(cls, replace(p, line=_to_full(p.line, f))) for cls, p in items]


def given_shadow_dir(config: DetectConfig, affine: Affine) -> tuple[float, float] | None:
    """The anti-sun direction on the tile grid from ``--sun-azimuth``, or None (estimate it)."""
    if config.sun_azimuth_deg is None:
        return None
    return sun_azimuth_to_pixel_dir(config.sun_azimuth_deg, affine)


def _towers(
    pair: TilePair, scales: Scales, config: DetectConfig, affine: Affine
) -> tuple[list[tuple[str, float, Tower]], tuple[float | None, float | None]]:
    """Towers with status and the sun azimuths used per epoch (posts.detect_towers).

    The anti-sun direction is ``--sun-azimuth`` where given, else estimated per epoch.
    """
    known = given_shadow_dir(config, affine)
    out, used = detect_towers(
        pair.before,
        pair.after,
        pair.valid,
        pair.bands,
        scales.gsd_m,
        TOWER_PARAMS,
        north=shadow_half_dir(affine, pair.tile.latitude),
        shadow_dirs=(known, known),
    )

    def azimuth(d: tuple[float, float] | None) -> float | None:
        return None if d is None else round(pixel_dir_to_azimuth(d, affine), 1)

    return out, (azimuth(used[0]), azimuth(used[1]))


def _check_fences(
    items: list[tuple[str, LinePiece]],
    zb: np.ndarray,
    za: np.ndarray,
    strips: list[tuple[str, shapely.LineString, float]],
    config: DetectConfig,
    gsd: float,
    grays: tuple[np.ndarray, np.ndarray],
    valid: np.ndarray,
) -> list[tuple[str, LinePiece]]:
    """Fence pieces less lane edges, wiggles, step edges and new pieces whose place did not
    change (``BELT`` becomes ``fence``); ``grays`` are the epochs' brightness (before, after)."""
    kept = _drop_lane_edges(items, strips, gsd, config.min_fence_length_m / gsd)
    if not any(c == "fence" for c, _ in kept):
        return kept
    explained = _strip_mask(strips, za.shape, EXPLAINED_MARGIN_M / gsd)
    edges = None
    if strips:
        margin = LANE_EDGE_MARGIN_M / gsd
        edges = shapely.union_all([ln.buffer(hw + margin) for _, ln, hw in strips])
    kept = _drop_edge_fences(kept, zb, za, gsd, explained, edges)
    return _drop_unchanged_new(kept, grays, valid, gsd)


NEW_FENCE_MIN_CHANGE = 0.1
"""A new fence piece must change the brightness at its place by this much against its
surroundings' change (a log ratio, ~10 %: :func:`~bordewatch.detect.lines.change_at_line` on
:func:`~bordewatch.detect.lines.smoothed_log_change`). Building a fence clears and marks its
ground along the whole piece; crop strips that changed, field mosaics and residuals of old
edges reach the ridge filters but average out along the line. A ratio, not units of the tile's
brightness spread as before (0.5 MAD units): in a tile of dark woods and bright fields the
spread is wide and a clear fence across a dark field changed its ground by only 0.1-0.4 units
(on scenes of a second renderer, ``benchmarks/crosscheck.py``, most of the true new fence was
dropped here). New fence pieces reaching this test on tuning scenes (2 km; demo 600-603,
nothing_new 600-607, hard 540-543, 1 m / 0.5 m): kept true / false metres in MAD units
>= 0.5: demo 1,262 / 3,845, nothing_new 0 / 3,127, hard 4,233 / 2,023; as a ratio >= 0.1:
1,262 / 3,248, 0 / 2,579, 5,005 / 2,386."""


def _drop_unchanged_new(
    items: list[tuple[str, LinePiece]],
    grays: tuple[np.ndarray, np.ndarray],
    valid: np.ndarray,
    gsd: float,
) -> list[tuple[str, LinePiece]]:
    """Drop ``new`` fence pieces whose place hardly changed (see ``NEW_FENCE_MIN_CHANGE``).

    The log change (:func:`~bordewatch.detect.lines.smoothed_log_change` of the epochs'
    brightness ``grays``, smoothed as the epochs are) is computed in a window around each
    piece, wide enough that its values there equal the whole tile's: a few pieces per tile,
    not a full-tile map (~0.15 s of a 0.5 m tile).
    """
    sigma = max(0.5, 1.0 / gsd)  # as the smoothed epochs'
    margin = int(3.0 * sigma + 0.5) + 1  # the filter's radius (truncate=3) and one more
    out = []
    for cls, p in items:
        if cls != "fence" or p.status != "new":
            out.append((cls, p))
            continue
        rows, cols = change_window(p.line, gsd, valid.shape, margin)
        diff = smoothed_log_change(
            grays[0][rows, cols], grays[1][rows, cols], valid[rows, cols], sigma
        )
        where = (rows.start, cols.start, valid.shape)
        if change_at_line(p.line, diff, gsd, window=where) >= NEW_FENCE_MIN_CHANGE:
            out.append((cls, p))
    return out


NEW_FENCE_MAX_BEFORE = 0.4
"""A new fence piece whose line stood out in the *before* by at least this fraction of how it
stands out after (:func:`~bordewatch.detect.lines.log_contrast`, either sign) was there already.
A log ratio keeps a line's value where a shadow or darker ground dims its stretch of one epoch,
and either sign catches a track or field edge that was dark before and is bright after. On
in-memory tuning tiles (1 m, demo seeds 500-511, nothing_new 500-507) new pieces matching truth
had |before / after| <= 0.27; false ones on nothing_new 0.08-16.8 (4 of 5 above 0.4)."""


NEW_FENCE_SEEN_LOG = 0.1
"""A new fence piece whose line stood out in the *before* by at least this log ratio (~10 %,
either sign; :func:`~bordewatch.detect.lines.log_contrast`) was there already, however much more
it stands out after: under snow a road that was grey among dark fields stands out several times
more, as a dark band on white, than it did. Through the pipeline on tuning scenes (hard 540-543,
demo 600-605) new pieces matching a true new fence had |before| <= 0.066; false ones on roads
and on existing or upgraded fences 0.08-0.21."""


NEW_LANE_MAX_BEFORE = 0.6
"""The same for a new patrol lane, its contrast in units of each epoch's texture contrast.
Higher than a fence's: a lane is wider than the 1 m core
:func:`~bordewatch.detect.lines.log_contrast` looks at and is often cleared along an old track
or field edge that stood out before too. Through the pipeline on tuning scenes (2 km each; demo
and nothing_new seeds 600-605, hoeryong 600-601, hard 540-543): false new lanes on nothing_new
818 -> 711 m, demo lane precision 0.76 -> 0.81 (recall 0.72 either way); hoeryong and hard
unchanged. Without the texture units hard (hazy after) lost a third of its true new lanes."""


def _drop_seen_before(
    items: list[tuple[str, LinePiece]],
    grays: tuple[np.ndarray, np.ndarray],
    valid: np.ndarray,
    gsd: float,
) -> list[tuple[str, LinePiece]]:
    """Drop ``new`` fences and lanes the *before* showed already (``NEW_FENCE_MAX_BEFORE``,
    ``NEW_FENCE_SEEN_LOG``, ``NEW_LANE_MAX_BEFORE``).

    A lane's contrast in each epoch is taken relative to that epoch's texture contrast around it
    (:func:`~bordewatch.detect.lines.texture_contrast`): haze over the *after* dims a new wide
    lane with everything else, and its raw ratio then reads as if the lane had stood out before.
    """
    gb, ga = grays
    out = []
    for cls, p in items:
        if p.status == "new" and cls in ("fence", "patrol_lane"):
            before = log_contrast(p.line, gb, gsd)
            if cls == "fence" and abs(before) >= NEW_FENCE_SEEN_LOG:
                continue
            after = log_contrast(p.line, ga, gsd)
            limit = NEW_FENCE_MAX_BEFORE
            if cls == "patrol_lane":
                before /= max(texture_contrast(p.line, gb, valid, gsd), 1e-6)
                after /= max(texture_contrast(p.line, ga, valid, gsd), 1e-6)
                limit = NEW_LANE_MAX_BEFORE
            if abs(before) >= limit * abs(after):
                continue
        out.append((cls, p))
    return out


CHANGED_LINE_MIN_TEXTURE = 0.5
"""A line is only called new (removed) where the other epoch shows at least this fraction of its
own epoch's texture contrast around it (:func:`~bordewatch.detect.lines.texture_contrast`; the
towers' ``min_contrast_ratio``): under a veil of thin cloud or haze an existing road or fence
keeps a fraction of its contrast and only *looks* new in the clear epoch. Through the pipeline
on tuning scenes (2 km each; nothing_new and demo seeds 600-605, hoeryong 600-601, hard
540-543): false new fence on nothing_new 868 -> 766 m and lanes 906 -> 818 m, new fence on hard
549 -> 356 m (precision 0.25 -> 0.39, recall unchanged); demo and hoeryong fences unchanged,
demo lanes 6,883 -> 6,826 m (recall unchanged). Only the clearest cases go: at 1 m much of the
fine texture is sensor noise, which a veil does not scale down (roads under thin cloud on
nothing_new seed 602 kept 0.6-0.8 of the clear epoch's texture)."""


def _drop_unobservable(
    items: list[tuple[str, LinePiece]],
    grays: tuple[np.ndarray, np.ndarray],
    valid: np.ndarray,
    gsd: float,
) -> list[tuple[str, LinePiece]]:
    """Drop new and removed lines where the other epoch could not show them (see
    ``CHANGED_LINE_MIN_TEXTURE``)."""
    gb, ga = grays
    out = []
    for cls, p in items:
        if p.status in ("new", "removed"):
            this, other = (ga, gb) if p.status == "new" else (gb, ga)
            mine = texture_contrast(p.line, this, valid, gsd)
            if texture_contrast(p.line, other, valid, gsd) < CHANGED_LINE_MIN_TEXTURE * mine:
                continue
        out.append((cls, p))
    return out


def _fence_items(
    le: LineEvidence,
    config: DetectConfig,
    scales: Scales,
    strips: list[tuple[str, shapely.LineString, float]],
    shape: tuple[int, int],
) -> list[tuple[str, LinePiece]]:
    """Thin-line and belt fence pieces in full-resolution pixel coordinates.

    New lanes (``strips``) and their edges are masked out of the ridges of ``le`` first;
    ``shape`` is the tile's.
    """
    gsd = scales.gsd_m
    f = le.factor
    new = [s for s in strips if s[0] == "new"]
    margin = LANE_EDGE_MARGIN_M / gsd
    zone = _strip_mask(new, shape, margin, margin, LANE_CLOSE_M / gsd)
    be = le.belt
    keep_w = keep_b = None
    if zone is not None:
        keep_w = _block_any(zone, f)[: le.fence_diff.shape[0], : le.fence_diff.shape[1]]
        belt_zone = _strip_mask(new, shape, BELT_LANE_MARGIN_M / gsd)
        keep_b = _block_any(belt_zone, be.factor)[: be.diff.shape[0], : be.diff.shape[1]]
    items = [
        ("fence", replace(p, line=_to_full(p.line, f)))
        for p in _fences(le, fence_params(config), gsd * f, keep_w)
    ]
    items += [
        (BELT, replace(p, line=_to_full(p.line, be.factor)))
        for p in _belt_fences(be, belt_params(config), gsd * be.factor, keep_b)
    ]
    return items


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
    ev_b = lane_evidence(pair.before, pair.valid, pair.bands, scales)
    ev_a = lane_evidence(pair.after, pair.valid, pair.bands, scales)
    items = _lanes(ev_b, ev_a, change, lane_params(config), gsd)
    if gsd < FENCE_MAX_GSD_M:
        release_free_memory()  # the fence evidence is a tile's memory peak
        # computed before the smoothed epochs, which would only add to that peak
        le = line_evidence(
            pair.before, pair.after, pair.valid, pair.bands, scales, grays=(ev_b.gray, ev_a.gray)
        )
        release_free_memory()  # its working-grid temporaries
        sigma = max(0.5, 1.0 / gsd)
        zb = smoothed_units(ev_b.gray, pair.valid, sigma)
        za = smoothed_units(ev_a.gray, pair.valid, sigma)
        strips = _lane_strips(items, za, zb, gsd)
        items += _fence_items(le, config, scales, strips, pair.valid.shape)
        del le
        kept = _check_fences(items, zb, za, strips, config, gsd, (ev_b.gray, ev_a.gray), pair.valid)
        del zb, za
    else:
        log.info("tile %s: %.1f m pixels: fences and towers are invisible", pair.tile.id, gsd)
        kept = items
    kept = _drop_seen_before(kept, (ev_b.gray, ev_a.gray), pair.valid, gsd)
    kept = _drop_unobservable(kept, (ev_b.gray, ev_a.gray), pair.valid, gsd)
    dets = [
        Detection(cls, p.status, round(p.score, 4), to_tile_crs(p.line, affine)) for cls, p in kept
    ]
    azimuths: tuple[float | None, float | None] = (None, None)
    if gsd < TOWER_MAX_GSD_M:
        # the tower maps are built from the images: the line maps' memory goes back first
        del ev_b, ev_a
        release_free_memory()
        towers, azimuths = _towers(pair, scales, config, affine)
        dets += [
            Detection("watchtower", st, sc, to_tile_crs(Point(t.col, t.row), affine))
            for st, sc, t in towers
        ]
    return DetectorOutput(detections=tuple(dets), change=change, sun_azimuth_deg=azimuths)
