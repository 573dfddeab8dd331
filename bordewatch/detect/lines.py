"""Fences/walls and patrol lanes: per-epoch line masks, polylines, and their status between epochs.

Each epoch is detected on its own (hysteresis on shared evidence, skeleton, polylines, gap
bridging). A line of the *after* epoch is then checked piece by piece against the *before*
evidence along the same path (not only against before's detections, so a road or field edge that
was slightly below threshold before does not become ``new``). The change score only supports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from scipy import ndimage
from shapely.geometry import LineString

from bordewatch.detect import gaussian
from bordewatch.detect.evidence import neighbour_steps
from bordewatch.vectorize import mask_to_polylines, sample_along, sample_along_all, split_by_flags

__all__ = [
    "LineParams",
    "LinePiece",
    "change_at_line",
    "change_window",
    "classify_lines",
    "edge_steps",
    "epoch_lines",
    "follows_edge",
    "line_mask",
    "log_contrast",
    "smoothed_log_change",
    "smoothed_units",
    "strip_half_width",
    "texture_contrast",
]

F32 = npt.NDArray[np.float32]
UPGRADE_RATIO = 0.5
"""A line of both epochs is changed (upgraded) only where the difference reaches this fraction
of its strength."""


@dataclass(frozen=True, slots=True)
class LineParams:
    """Thresholds of one line class (in background-deviation units of the evidence).

    Attributes
    ----------
    high, low : float
        Hysteresis thresholds of the per-epoch mask.
    present : float
        Evidence along a path above which the object is taken as present in the other epoch.
    min_length_m : float
    max_gap_m : float
        Aligned gaps bridged when tracing.
    min_change : float
        Mean change score a piece absent from the other epoch needs to be reported.
    """

    high: float
    low: float
    present: float
    min_length_m: float
    max_gap_m: float = 8.0
    min_change: float = 0.3


@dataclass(frozen=True, slots=True)
class LinePiece:
    """A classified line piece in pixel coordinates (x=col, y=row).

    ``after_line`` is the mean thin-line evidence of the after epoch alone along the piece
    (background units; 0 where not measured): a new line the after image shows by itself.
    """

    status: str
    score: float
    line: LineString
    after_line: float = 0.0


def line_mask(strength: F32, params: LineParams) -> npt.NDArray[np.bool_]:
    """Hysteresis mask of a line-strength map.

    ``skimage.filters.apply_hysteresis_threshold`` step for step (the same comparisons and
    4-connected labels), except that the components holding a strong pixel are marked from the
    strong pixels' labels rather than by summing the strong mask per label over the whole map.
    """
    low = np.clip(params.low, a_min=None, a_max=params.high)  # as skimage: low <= high
    labels, n = ndimage.label(strength > low)
    keep = np.zeros(n + 1, bool)
    keep[labels[strength > params.high]] = True
    return keep[labels]


def epoch_lines(strength: F32, params: LineParams, gsd_m: float) -> list[LineString]:
    """Polylines (pixel coordinates) of one epoch's line-strength map."""
    return mask_to_polylines(
        line_mask(strength, params),
        min_length_px=params.min_length_m / gsd_m,
        simplify_px=1.0,
        max_gap_px=params.max_gap_m / gsd_m,
        min_piece_px=max(3.0, 4.0 / gsd_m),
    )


def _smooth_flags(flags: npt.NDArray[np.bool_], window: int) -> npt.NDArray[np.int_]:
    """Majority vote of boolean flags over a sliding window (odd length)."""
    if window <= 1 or len(flags) < 3:
        return flags.astype(int)
    frac = ndimage.uniform_filter1d(flags.astype(np.float32), size=window, mode="nearest")
    return (frac >= 0.5).astype(int)


def _score(strength: float, support: float, high: float) -> float:
    """0–1 confidence from mean strength (in units of ``high``) and change support."""
    s = 1.0 - np.exp(-strength / high)
    return float(np.clip(0.6 * s + 0.4 * support, 0.0, 1.0))


def classify_lines(
    lines: list[LineString],
    this: F32,
    other: F32,
    change: F32 | None,
    params: LineParams,
    gsd_m: float,
    *,
    absent_status: str,
) -> list[LinePiece]:
    """Split one epoch's lines into pieces present / absent in the other epoch.

    Parameters
    ----------
    lines : list of LineString
        Pixel-coordinate polylines of this epoch.
    this, other : ndarray of float32
        Line strength of this and of the other epoch (same class).
    change : ndarray of float32 or None
        Change score (NaN where invalid). None: no change evidence; absent pieces need no
        support and score with a neutral 0.5.
    params : LineParams
    gsd_m : float
    absent_status : {"new", "removed"}
        Status of pieces absent from the other epoch.

    Returns
    -------
    list of LinePiece
        Absent pieces get ``absent_status``; present ones ``existing`` or ``upgraded`` (only when
        ``absent_status == "new"``: the after line is much stronger and the pixels changed).
    """
    tol = max(1, round(1.5 / gsd_m))
    maps = (this, other) if change is None else (this, other, np.nan_to_num(change))
    radii = (1, tol, tol)[: len(maps)]
    window = round(12.0 / gsd_m) | 1
    out: list[LinePiece] = []
    for line in lines:
        d, (a, b, *c) = sample_along_all(line, maps, radii)
        present = (b >= params.present) | (b >= 0.5 * a)
        flags = _smooth_flags(present, window)
        xy = shapely.get_coordinates(line)
        for flag, piece in split_by_flags(line, d, flags):
            if np.array_equal(shapely.get_coordinates(piece), xy):  # uncut: same samples
                pa, pb, pc = a, b, c
            else:
                _, (pa, pb, *pc) = sample_along_all(piece, maps, radii)
            support = float(np.mean(pc[0])) if pc else 0.5
            strength = float(np.mean(pa))
            if flag == 0:
                # new or removed things change the pixels they stand on: require that support
                short = piece.length * gsd_m < params.min_length_m
                if short or (pc and support < params.min_change):
                    continue
                out.append(LinePiece(absent_status, _score(strength, support, params.high), piece))
                continue
            status = "existing"
            if absent_status == "new" and support >= 0.5 and strength >= 2.0 * float(np.mean(pb)):
                status = "upgraded"
            out.append(LinePiece(status, _score(strength, 0.5, params.high), piece))
    return out


# --- lines from the difference of the epochs -------------------------------------------------


def peak_lines(
    strength: F32, peaks: npt.NDArray[np.bool_] | None, params: LineParams, gsd_m: float
) -> list[LineString]:
    """Polylines of a line-strength map, traced along its ridge (``peaks``) when given.

    Hysteresis runs on the ridge only, so two parallel lines a few pixels apart stay two lines.
    """
    s = strength if peaks is None else np.where(peaks, strength, 0).astype(np.float32)
    mask = line_mask(s, params)
    if peaks is not None:
        # a one-pixel ridge of a diagonal line is 8-connected; close 4-gaps before skeletonising
        mask = ndimage.binary_closing(mask, structure=np.ones((2, 2), bool)) | mask
    return mask_to_polylines(
        mask,
        min_length_px=params.min_length_m / gsd_m,
        simplify_px=1.0,
        max_gap_px=params.max_gap_m / gsd_m,
        min_piece_px=max(3.0, 4.0 / gsd_m),
    )


def status_of_changed(
    lines: list[LineString],
    after: F32,
    before: F32,
    diff: F32,
    params: LineParams,
    gsd_m: float,
) -> list[LinePiece]:
    """Status of lines found in the difference of the epochs, piece by piece.

    Along each line the after, before and difference evidence are averaged over ~12 m. A piece
    whose difference evidence is there and whose before evidence is absent is ``new``; one with
    before evidence but none after is ``removed``; one present in both whose difference is strong
    (e.g. wire -> wall) is ``upgraded``. Pieces whose difference evidence is weak are dropped
    (the per-epoch inventory reports them as ``existing``).

    Parameters
    ----------
    lines : list of LineString
        Pixel-coordinate polylines (of the grid of the maps).
    after, before, diff : ndarray of float32
        Line strength of each epoch and of the difference (background units).
    params : LineParams
    gsd_m : float
        Pixel size of the maps' grid.
    """
    tol = max(1, round(1.5 / gsd_m))
    window = round(12.0 / gsd_m) | 1
    out: list[LinePiece] = []
    for line in lines:
        d, (da, db, dd) = sample_along_all(line, (after, before, diff), (tol, tol, 1))
        if len(d) >= 3 and window > 1:
            da, db, dd = (ndimage.uniform_filter1d(x, window, mode="nearest") for x in (da, db, dd))
        has_b = db >= params.present
        has_a = da >= params.present
        # a line present in both epochs changed only if the difference is a good part of it
        # (wire -> wall); a small relative residual is radiometry or misregistration
        weak = (dd < params.low) | (has_b & has_a & (dd < UPGRADE_RATIO * np.maximum(da, db)))
        flags = np.where(weak, 0, np.where(~has_b, 1, np.where(has_a, 2, 3))).astype(int)
        flags = _mode_filter(flags, window)
        for flag, piece in split_by_flags(line, d, flags):
            if flag == 0 or piece.length * gsd_m < params.min_length_m:
                continue
            _, pd = sample_along(piece, diff, radius=1)
            status = {1: "new", 2: "upgraded", 3: "removed"}[flag]
            out.append(LinePiece(status, _score(float(np.mean(pd)), 0.5, params.high), piece))
    return out


def existing_lines(
    lines: list[LineString],
    after: F32,
    before: F32,
    diff: F32,
    params: LineParams,
    gsd_m: float,
) -> list[LinePiece]:
    """Pieces of after-epoch lines also present before and not changed: ``existing``."""
    tol = max(1, round(1.5 / gsd_m))
    window = round(12.0 / gsd_m) | 1
    out: list[LinePiece] = []
    for line in lines:
        d, (db, dd, da) = sample_along_all(line, (before, diff, after), (tol, tol, tol))
        if len(d) >= 3 and window > 1:
            db, dd, da = (ndimage.uniform_filter1d(x, window, mode="nearest") for x in (db, dd, da))
        same = (dd < params.high) | (dd < UPGRADE_RATIO * np.maximum(da, db))
        flags = _mode_filter(((db >= params.present) & same).astype(int), window)
        for flag, piece in split_by_flags(line, d, flags):
            if flag and piece.length * gsd_m >= params.min_length_m:
                _, pa = sample_along(piece, before, radius=tol)
                out.append(
                    LinePiece("existing", _score(float(np.mean(pa)), 0.5, params.high), piece)
                )
    return out


def _mode_filter(flags: npt.NDArray[np.int_], window: int) -> npt.NDArray[np.int_]:
    """Most frequent flag in a sliding window (ties: the smaller flag), for flags 0..3."""
    if window <= 1 or len(flags) < 3:
        return flags
    votes = np.stack(
        [
            ndimage.uniform_filter1d((flags == k).astype(np.float32), window, mode="nearest")
            for k in range(4)
        ]
    )
    return np.argmax(votes + np.arange(4)[::-1, None] * 1e-4, axis=0).astype(int)


# --- pre-existing structure along a line ------------------------------------------------------

STEP_OFFSETS_M = (3.0, 4.0, 5.0)
"""Half-distances across a line at which the two sides are compared (a fence is ~0.5 m wide)."""
STEP_SHIFT_M = 1.0
LINE_SIDE_M = 2.0
"""A thin line (fence, wall) stands out of its sides this far away; a wider strip does not."""
"""Misregistration tolerance: the comparison slides this far across the line."""


def smoothed_units(gray: F32, valid: npt.NDArray[np.bool_], sigma_px: float) -> F32:
    """``(gray - median) / MAD`` over valid pixels, smoothed over ``sigma_px`` (float32)."""
    v = gray[::2, ::2][valid[::2, ::2]]
    med = float(np.median(v)) if v.size else 0.0
    mad = float(np.median(np.abs(v - med))) * 1.4826 if v.size else 1.0
    # in place: one full-size map besides the result (the same values as np.where(...))
    z = np.subtract(gray, np.float32(med), dtype=np.float32)
    z /= np.float32(max(mad, 1e-6))
    z[~valid] = 0
    return gaussian.gaussian_filter(z, sigma_px, mode="nearest", truncate=3.0)


def smoothed_log_change(
    before: F32, after: F32, valid: npt.NDArray[np.bool_], sigma_px: float
) -> F32:
    """``log(after) - log(before)`` of two brightness maps (0 off ``valid``), smoothed over
    ``sigma_px`` (float32).

    A relative change: a fence darkens or a cleared strip lightens its ground by a fraction of
    its brightness, on dark forest as on bright fields, which units of a tile's brightness
    spread (:func:`smoothed_units`) do not measure alike.
    """
    floor = np.float32(_LOG_FLOOR)
    d = np.log(np.maximum(after, floor), dtype=np.float32)
    d -= np.log(np.maximum(before, floor), dtype=np.float32)
    d[~valid] = 0
    return gaussian.gaussian_filter(d, sigma_px, mode="nearest", truncate=3.0)


_LOG_FLOOR = 1e-3
"""Brightness floor of :func:`smoothed_log_change` (reflectance-like 0-1 values)."""


def _normals(line: LineString) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Points every pixel along ``line`` and the unit normals there (x=col, y=row)."""
    n = max(2, int(np.ceil(line.length)) + 1)
    d = np.linspace(0.0, line.length, n)
    pts = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
    tang = np.gradient(pts, axis=0)
    tang /= np.maximum(np.hypot(tang[:, 0], tang[:, 1]), 1e-9)[:, None]
    return pts, np.column_stack([-tang[:, 1], tang[:, 0]])


def _indices_at(
    pts: npt.NDArray[np.float64],
    nrm: npt.NDArray[np.float64],
    ks: npt.ArrayLike,
    shape: tuple[int, ...],
) -> tuple[npt.NDArray[np.int_], npt.NDArray[np.int_]]:
    """Nearest (row, col) indices ``k`` pixels across from ``pts`` along ``nrm`` (clipped), for
    every offset ``k`` of ``ks`` at once: arrays of shape ``(len(ks), len(pts))``."""
    ks = np.asarray(ks, np.float64)[:, None]
    xs = np.rint(pts[None, :, 0] + nrm[None, :, 0] * ks).astype(int)
    ys = np.rint(pts[None, :, 1] + nrm[None, :, 1] * ks).astype(int)
    # np.minimum/np.maximum, not np.clip: same values, a fraction of the call overhead
    return (
        np.minimum(np.maximum(ys, 0), shape[0] - 1),
        np.minimum(np.maximum(xs, 0), shape[1] - 1),
    )


def _median_profile(
    img: F32,
    pts: npt.NDArray[np.float64],
    nrm: npt.NDArray[np.float64],
    ks: npt.ArrayLike,
    window: tuple[int, int, tuple[int, int]] | None = None,
) -> npt.NDArray[np.float64]:
    """Median of ``img`` along the line at each offset ``k`` across it (pixels), as float64.

    All offsets are gathered at once: one (offset, point) array and one median call, not a
    median per offset (thousands of small calls per tile). With ``window`` = (row, col of its
    first pixel, shape of the whole map), ``img`` is that window of the map: the pixels are
    those of the whole map (clipped to it), which must lie inside the window.
    """
    if window is None:
        return np.median(img[_indices_at(pts, nrm, ks, img.shape)], axis=1).astype(np.float64)
    r0, c0, shape = window
    rows, cols = _indices_at(pts, nrm, ks, shape)
    rows -= r0
    cols -= c0
    return np.median(img[rows, cols], axis=1).astype(np.float64)


CHANGE_CORE_M = 2.0
"""Half-width of the line's own place in :func:`change_at_line` (a fence and its posts' shadow,
plus misregistration)."""
CHANGE_REACH_M = 20.0
"""The profile of :func:`change_at_line` reaches this far either side: its median is the
level the line's change is measured against."""


def change_at_line(
    line: LineString,
    diff: F32,
    gsd_m: float,
    *,
    window: tuple[int, int, tuple[int, int]] | None = None,
) -> float:
    """How much the brightness changed at a line, against its surroundings (units of ``diff``).

    ``diff`` is the after-minus-before brightness (the detector gives the log ratio of
    :func:`smoothed_log_change`; differences of :func:`smoothed_units` work alike). Its median
    along the line at every offset across it makes a profile; texture, noise and changes that
    cross the line average out, while a new line and the strip cleared for it do not. Returns
    the largest departure of the profile within ``CHANGE_CORE_M`` of the line from the profile's
    median over ``CHANGE_REACH_M`` either side. ``diff`` may be a window of the map, given by
    ``window`` (row and column of its first pixel, the map's shape; see :func:`change_window`).
    """
    pts, nrm = _normals(line)
    reach = max(2, round(CHANGE_REACH_M / gsd_m))
    core = max(1, round(CHANGE_CORE_M / gsd_m))
    ks = np.arange(-reach, reach + 1)
    prof = _median_profile(diff, pts, nrm, ks, window)
    dev = np.abs(prof - np.median(prof))
    return float(dev[np.abs(ks) <= core].max())


def change_window(
    line: LineString, gsd_m: float, shape: tuple[int, int], margin_px: int
) -> tuple[slice, slice]:
    """Rows and columns of the map that :func:`change_at_line` reads for ``line``, widened by
    ``margin_px`` (a filter's reach) and clipped to ``shape``."""
    reach = max(2, round(CHANGE_REACH_M / gsd_m)) + 2 + margin_px
    x0, y0, x1, y1 = line.bounds
    rows = slice(max(math.floor(y0) - reach, 0), min(math.ceil(y1) + reach + 1, shape[0]))
    cols = slice(max(math.floor(x0) - reach, 0), min(math.ceil(x1) + reach + 1, shape[1]))
    return rows, cols


CONTRAST_REACH_M = 8.0
"""The profile of :func:`log_contrast` reaches this far either side of the line."""
CONTRAST_SIDE_M = 3.0
"""Offsets at least this far from the line make its background in :func:`log_contrast`."""


def log_contrast(line: LineString, gray: F32, gsd_m: float) -> float:
    """How much a line stands out of its sides, as a log ratio of brightness (signed).

    The median of ``gray`` along the line at every offset across it makes a profile; the
    result is ``log(profile / background)`` at the offset within 1 m of the line that departs
    most from the background (the median of the profile from ``CONTRAST_SIDE_M`` to
    ``CONTRAST_REACH_M`` either side). A ratio, not a difference: a line keeps its value where
    a shadow, haze or darker ground scales its surroundings' brightness.
    """
    pts, nrm = _normals(line)
    reach = max(2, round(CONTRAST_REACH_M / gsd_m))
    ks = np.arange(-reach, reach + 1)
    prof = np.maximum(_median_profile(gray, pts, nrm, ks), 1e-3)
    side = np.abs(ks) >= max(1, round(CONTRAST_SIDE_M / gsd_m))
    core = np.abs(ks) <= max(1, round(1.0 / gsd_m))
    ratio = np.log(prof[core] / float(np.median(prof[side])))
    return float(ratio[np.argmax(np.abs(ratio))])


TEXTURE_BOX_M = 64.0
"""Side of the squares along a line in which :func:`texture_contrast` measures an epoch's
texture (the towers' ``contrast_box_m``)."""


def texture_contrast(
    line: LineString,
    gray: F32,
    valid: npt.NDArray[np.bool_],
    gsd_m: float,
    *,
    box_m: float = TEXTURE_BOX_M,
) -> float:
    """An epoch's fine-texture contrast around a line: the median absolute step of log brightness.

    Steps are taken between valid neighbours ~1 m apart (along rows and columns) in squares of
    side ``box_m`` centred every ``box_m / 2`` along the line. A log ratio: season, gain or a
    shadow scales brightness and keeps it; a veil of thin cloud or haze adds light and lowers it
    with the contrast of everything beneath, the line's included. The line itself is a small
    part of each square and hardly moves the median. 0 where fewer than 16 steps are valid.
    """
    half = max(2, round(box_m / (2 * gsd_m)))
    step = max(1, round(1.0 / gsd_m))
    h, w = gray.shape
    n = max(2, int(np.ceil(line.length / half)) + 1)
    centres = shapely.get_coordinates(
        shapely.line_interpolate_point(line, np.linspace(0.0, line.length, n))
    )
    steps = []
    for x, y in np.rint(centres).astype(np.int64).tolist():
        rows = slice(max(y - half, 0), min(y + half + 1, h), step)
        cols = slice(max(x - half, 0), min(x + half + 1, w), step)
        lg = np.log(np.maximum(np.asarray(gray[rows, cols], np.float64), 0.0) + 0.02)
        steps.append(neighbour_steps(lg, valid[rows, cols]))
    all_steps = np.concatenate(steps)
    return float(np.median(all_steps)) if all_steps.size >= 16 else 0.0


STRIP_REACH_M = 8.0
"""Half-width estimates of a strip look this far across it (lanes are 2–8 m wide)."""
STRIP_MIN_CONTRAST = 0.5
"""A strip side standing out of its background by less than this (MAD units) has no width."""


def strip_half_width(line: LineString, z: F32, gsd_m: float, *, default_m: float = 2.0) -> float:
    """Half-width in pixels of a bright strip (patrol lane) along its centre ``line``.

    The profile across the strip (median along it) is followed out on each side to where it
    falls halfway from the centre to the background ``STRIP_REACH_M`` away; the narrower side
    is taken (the other may merge with a cleared belt or a road). ``default_m`` where a side
    hardly stands out.

    Parameters
    ----------
    line : LineString
        Centre line, pixel coordinates.
    z : ndarray of float32
        Brightness in background units (:func:`smoothed_units`).
    gsd_m : float
    default_m : float

    Returns
    -------
    float
        Half-width in pixels, between 0.5 m and ``STRIP_REACH_M / 2``.
    """
    pts, nrm = _normals(line)
    step = max(1.0, 0.5 / gsd_m)
    ks = np.arange(0.0, STRIP_REACH_M / gsd_m + 0.5 * step, step)
    widths = []
    for sign in (-1.0, 1.0):
        prof = _median_profile(z, pts, nrm, sign * ks)
        centre, bg = prof[0], float(np.median(prof[-max(2, len(ks) // 4) :]))
        if centre - bg < STRIP_MIN_CONTRAST:
            continue
        below = np.nonzero(prof <= 0.5 * (centre + bg))[0]
        if below.size:
            widths.append(float(ks[below[0]]))
    hw = min(widths) if widths else default_m / gsd_m
    return float(np.clip(hw, 0.5 / gsd_m, 0.5 * STRIP_REACH_M / gsd_m))


def edge_steps(
    line: LineString,
    z: F32,
    gsd_m: float,
    *,
    explained: npt.NDArray[np.bool_] | None = None,
    steps_only: bool = False,
) -> npt.NDArray[np.float64]:
    """Brightness step across ``line`` at every pixel step (largest over offsets and shifts).

    The two sides of the line are compared ``STEP_OFFSETS_M`` away, with the pair slid up to
    ``STEP_SHIFT_M`` across. A thin line (fence, wire, wall) has the same background on both
    sides: ~0. A road side, field edge or bank is a step: as large as its contrast; so is a
    band a few metres wide around the line (a road, lane or cleared belt), whose side the
    slid pair reaches. With ``steps_only`` the signed differences are averaged over the slides
    instead: a step keeps its sign whichever way the pair slides, a band centred on the line
    flips it and cancels (a new fence's own cleared belt is not an edge). Where the epoch
    shows a line at the place standing out more than the sides differ, the step is 0. Side
    pairs of which one falls in ``explained`` (pixels of known objects, e.g. a patrol lane
    beside a fence) are not compared: the object, not an edge, makes that step.
    """
    pts, nrm = _normals(line)
    n = len(pts)
    shift = max(1, round(STEP_SHIFT_M / gsd_m))
    shifts = range(-shift, shift + 1)
    a = LINE_SIDE_M / gsd_m
    # every offset across the line the comparisons below use, gathered in one indexing pass
    offsets = list(shifts) + [a + s for s in shifts] + [-a + s for s in shifts]
    for off in STEP_OFFSETS_M:
        k = off / gsd_m
        offsets += [k + s for s in shifts] + [-k + s for s in shifts]
    row = {k: i for i, k in enumerate(dict.fromkeys(offsets))}
    idx = _indices_at(pts, nrm, list(row), z.shape)
    values = z[idx].astype(np.float64)
    free_px = None if explained is None else ~explained[idx]

    def at(k: float) -> npt.NDArray[np.float64]:
        return values[row[k]]

    def free(k: float) -> npt.NDArray[np.bool_]:
        return np.ones(n, bool) if free_px is None else free_px[row[k]]

    out = np.zeros(n)
    line = np.zeros(n)
    for off in STEP_OFFSETS_M:
        k = off / gsd_m
        # signed side difference, averaged over the slides: a step keeps its sign whichever way
        # the pair slides, a band centred on the line (a cleared belt) flips it and cancels
        step = np.zeros(n)
        for s in shifts:
            d = at(k + s) - at(-k + s)
            if explained is not None:
                d = np.where(free(k + s) & free(-k + s), d, 0.0)
            if steps_only:
                step += d
            else:
                out = np.maximum(out, np.abs(d))
        out = np.maximum(out, np.abs(step) / len(shifts))
    for s in shifts:
        # thin: the centre stands out of its sides already 2 m away (a road or strip does not)
        line = np.maximum(line, np.abs(at(s) - 0.5 * (at(a + s) + at(-a + s))))
    # a line of this epoch at the place (an old fence) stands out of both sides by more than
    # the sides differ: not an edge
    return np.where(line > out, 0.0, out)


def follows_edge(
    line: LineString,
    z: F32,
    gsd_m: float,
    thr: float,
    *,
    frac: float = 0.5,
    explained: npt.NDArray[np.bool_] | None = None,
    steps_only: bool = False,
) -> bool:
    """Whether ``line`` runs along a brightness step of ``z`` (``smoothed_units``).

    True when the step across reaches ``thr`` MAD units over at least ``frac`` of the length:
    the line is a road side, field edge or bank (within misregistration), not a fence. An edge
    crossing the line at an angle answers in one spot only. Steps made by ``explained`` pixels
    and, with ``steps_only``, bands centred on the line (see :func:`edge_steps`) do not count.
    """
    steps = edge_steps(line, z, gsd_m, explained=explained, steps_only=steps_only)
    return bool(np.mean(steps >= thr) >= frac)
