"""Watchtowers and guard posts: a compact roof with a cast shadow beside it, new or not.

A watchtower is a compact object (footprint 2–8 m) taller than a house. From above it shows as a
*roof* (brighter or differently coloured than its surroundings) with a *shadow* (a compact dark
patch, about as wide as the roof, as long as height / tan(elevation)) on the anti-sun side.
House shadows are as wide as the house (7–20 m); fields, forest and water are far larger; wires
and fence shadows are thinner and much longer.

Per epoch (:func:`tower_maps`, :func:`find_towers`):

1. **Log-ratio to the local mean** per visible band over a ~25 m box: ``shade`` (minus the band
   mean: darkness) and ``roof`` (colour difference or extra brightness). Thresholds are relative:
   at least a fixed floor and ``z`` robust standard deviations of the tile's own texture.
2. **Shadow components** of dark pixels at several darkness levels (a tower's shadow that
   touches a fence's shadow or a lane's dark rim at the lowest level stands alone higher up),
   sized like a tower shadow (area, length and width along their principal axes); crowds of
   compact dark objects (villages, orchards, mottled fields) are dropped.
3. **Sun direction**: ``shadow_dir`` when given (``--sun-azimuth``); else estimated from the
   whole epoch (:func:`shadow_direction`: bright things have dark neighbours on the anti-sun
   side); else shadows must point to the poleward half (:func:`shadow_half_dir`: north of the
   tropics the sun stands in the southern sky at overpass, south of them in the northern;
   between them either). Candidates pointing elsewhere are dropped.
4. **Roof check**: with a direction, the roof is searched on the sun side of the shadow, up to
   ``roof_reach_m`` beyond its tip (a shadow fades where it crosses a bright lane), and must be
   *compact* (stand out above the contrast along any line through it, unlike a lane or a field
   edge, and be a small patch), in contrast or in colour (a roof beside a bright lane joins
   the lane in contrast, not in colour); without one, the most roof-like pixels in a ring
   around the shadow. The tower is placed at the roof.

Status (:func:`classify_towers`): a tower of one epoch is *existing* when the other epoch has a
tower (looser thresholds) within ``match_m``, or when the other epoch already had the same roof
there (log-ratio colour within ``same_roof`` of it, best over a small misregistration search) or
was already as dark over the shadow; otherwise *new* (after only) or *removed* (before only).
A change is only claimed where the other epoch could have shown it (:func:`local_contrast`):
where its fine texture is less than half as contrasty as this epoch's around the tower (thin
haze or cloud, a washed-out or re-stretched epoch), the same texture only *looks* new.
Changed towers come from change maps (this epoch less the other's maximum within
``change_shift_m``); their roof must be a compact patch (``max_roof_m2``) near the shadow's
start (``roof_near_m``), their shadow pixels must have got darker in absolute terms
(:func:`_darkened`: not unchanged ground whose surroundings brightened), and their own epoch
must show them (:func:`_confirmed`). The cheap per-tower tests run first; the other epoch's
lookup runs in windows around the survivors (:func:`_towers_near`).

Memory: the maps are built one band at a time in float32, one level's components are held at
a time and the epoch comparison gathers small windows; an epoch's own full-bar towers are
found once per call.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from affine import Affine
from scipy import ndimage
from scipy.spatial import cKDTree

from bordewatch.detect.evidence import block_mean, neighbour_steps

__all__ = [
    "Tower",
    "TowerMaps",
    "TowerParams",
    "classify_towers",
    "consensus_direction",
    "darkness",
    "detect_towers",
    "estimate_shadow_dir",
    "find_towers",
    "local_contrast",
    "loose_tower_params",
    "new_tower_candidates",
    "north_pixel_dir",
    "pixel_dir_to_azimuth",
    "shadow_direction",
    "shadow_half_dir",
    "sun_azimuth_to_pixel_dir",
    "tower_maps",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
_VISIBLE = ("red", "green", "blue", "r", "g", "b", "pan", "gray", "grey")
_EPS = np.float32(0.02)


@dataclass(frozen=True, slots=True)
class TowerParams:
    """Thresholds of the tower detector (lengths in metres, contrasts as natural-log ratios).

    Attributes
    ----------
    background_m : float
        Side of the box over which the local mean is taken (when ``tophat_m`` is 0).
    tophat_m : float
        Side of the square of the grey opening / closing the contrasts are measured against.
    dark : float
        Least log-darkness of a shadow pixel (0.25: 22 % darker than the local mean).
    dark_z : float
        ... and at least this many robust standard deviations of the tile's darkness.
    min_area_m2, max_area_m2 : float
        Area of a tower shadow.
    max_length_m, max_width_m : float
        Extent of a tower shadow along / across its principal axis (4 standard deviations).
    min_shade : float
        Mean log-darkness a tower shadow needs.
    ring_m : float
        Width of the ring around the shadow searched for the roof.
    roof : float
        Least roof contrast (log-ratio colour distance or brightening).
    roof_z : float
        ... and at least this many robust standard deviations of the tile's roof contrast.
    max_angle_deg : float
        Largest angle between a candidate's roof → shadow direction and the sun's.
    consensus : float
        Mean resultant length the strongest candidates need (:func:`consensus_direction` only;
        the detector estimates the sun with :func:`shadow_direction`).
    crowd_m, max_crowd : float, int
        Radius of the crowd test and the most other shadow objects allowed within it.
    alone_m : float
        Shadow pieces closer than this are parts of the same object (not a crowd); of two
        towers closer than this only the stronger is kept.
    match_m : float
        Towers of the two epochs within this distance (plus 2 px) are the same.
    same_roof : float
        The other epoch had the same roof when its colour differs by less than this fraction
        of the roof's contrast.
    was_dark : float
        The shadow's place was already this fraction as dark in the other epoch: not a change.
    shift_m : float
        Misregistration searched when comparing the epochs.
    max_gsd_m : float
        At this pixel size and coarser towers (2–8 m) are not resolved: none is reported.
    recheck : bool
        Re-test changed towers against the other epoch (:func:`classify_towers`).
    roof_change : bool
        The roof must be new too (else only present), when looking for changed towers.
    inventory : bool
        Also report *after*'s unchanged towers as ``existing``.
    crowd_elong : float
        Dark objects longer than this × their width (fence shadows, lane rims) do not crowd.
    new_roof : float
        A changed (new / removed) tower's roof contrast must reach this × the roof threshold.
    levels : tuple of float
        Darkness levels (multiples of the shadow threshold) shadow components are taken at.
    roof_reach_m : float
        How far beyond a shadow's sun-side tip its roof is searched once the sun is known.
    roof_box_m : float
        The roof is the pixel standing out most above the mean roof contrast along any line
        through it, sampled ``roof_box_m / 4`` to ``roof_box_m / 2`` away (a compact roof,
        not a lane or a bright field beside the shadow).
    min_contrast_ratio : float
        A tower is only called new (removed) where the other epoch shows at least this fraction
        of this epoch's local texture contrast (:func:`local_contrast`): under haze, thin cloud or a
        washed-out stretch the other epoch cannot show that the tower was absent, and the same
        texture only looks new because it stands out more in one epoch.
    contrast_box_m : float
        Side of the box the local contrast (median step of the darkness map) is measured in.
    was_bright : float
        A changed tower's shadow place must not have been brighter than its surroundings in
        the other epoch by this × that epoch's shadow threshold (a bright thing gone there
        darkens the place without casting a shadow).
    change_shift_m : float
        Misregistration the change maps absorb (:func:`change_maps`: the other epoch's nearby
        maximum). The pair is co-registered first; a wider window eats the new shadow itself
        wherever the other epoch has any dark texture beside it (3 m lost ~half the towers).
    max_roof_m2 : float
        Largest area of the roof's bright patch (pixels above ``roof_patch`` × its peak joined
        to it): an 8 m roof is 64 m²; a sand bank, a field or a lane is larger.
    roof_near_m : float
        A roof this far beyond the shadow's sun-side tip counts half as much as one at the tip
        (the roof stands where the shadow begins; a lane further on is not it).
    roof_patch : float
        The roof's patch (for ``max_roof_m2``) is its pixels above this fraction of its peak.
    roof_colour : bool
        Judge a roof by its colour too, where its contrast merges with its surroundings'. A
        roof beside a bright lane joins the lane in roof contrast (the patch is too large, the
        line through it along the lane as bright), not in colour. The roof then stands out by
        its colour distance (log-ratio vectors, :func:`_colour_stand_out`) and its patch is the
        pixels of its colour (:func:`_compact_colour`). With a sun direction only. On
        in-memory tuning tiles (1.5 x 1.5 km at 1 m, 12 seeds each from 520-543) true new
        towers found went 14 -> 16 of 75 (demo) and 14 -> 16 of 82 (hoeryong), false ones
        8 -> 9 and 4 -> 4; false new towers on 16 nothing_new tiles 4 -> 4; through the
        pipeline (2 km, seeds 540-545) on hard (0.5 m) 4 -> 6 and on nothing_new 1 -> 1.
    roof_colour_tol : float
        A pixel is of the roof's colour within this fraction of the roof's own colour contrast.
    roof_colour_bar : float
        The colour stand-out counts where it reaches this × the roof bar: one pixel's colour
        is noisy, and a soft cloud or haze edge differs in colour along every line through it
        (hard tuning seed 540, 2 km at 0.5 m: 15.5 false new towers per km at 0, 3.0 at 3).
    confirm_here : bool
        A changed tower is confirmed in its own epoch also where that epoch's maps show its
        roof and shadow at the places found (:func:`_shown_alone`), not only where the
        epoch's full detector finds a tower there.
    confirm_roof, confirm_dark : float
        ... the roof contrast at least ``confirm_roof`` × the epoch's roof threshold, the
        shadow's mean darkness at least ``confirm_dark`` × its shadow threshold.
    own_crowd : int
        A changed tower must not stand among more than this many other compact shadows of its
        own epoch (at the epoch's shadow threshold, within ``crowd_m``; :func:`_uncrowded`);
        negative: no test. The change maps cancel a wood's or an orchard's shadows only where
        they did not move: where the sun, the season or the crowns changed, the residue is a
        field of compact "new" shadows with bright crowns beside them. The same count as the
        full detector's ``max_crowd``, which the change maps' own crowd test cannot apply.
        Through the pipeline on tuning scenes (2 km each; nothing_new and demo seeds 600-605,
        hoeryong 600-601, hard 540-543): false new towers 21 -> 3 (nothing_new), 35 -> 9
        (demo, true ones 5 -> 5), 6 -> 2 (hard); true new towers on hoeryong 27 -> 24.
    darkened : float
        A changed tower's shadow pixels must have got darker in absolute terms, by this × the
        epoch's shadow threshold beyond the tile's median change (:func:`_darkened`).
    working_gsd_m : float
        Finer tiles are searched on block means this coarse (a whole factor of their pixel
        size, :func:`working_factor`): a 0.5 m tile on 2 x 2 blocks, a quarter of the work.
    """

    background_m: float = 25.0
    tophat_m: float = 0.0
    dark: float = 0.25
    dark_z: float = 4.0
    min_area_m2: float = 2.5
    max_area_m2: float = 220.0
    max_length_m: float = 32.0
    max_width_m: float = 10.0
    min_shade: float = 0.3
    ring_m: float = 3.0
    roof: float = 0.12
    roof_z: float = 3.0
    max_angle_deg: float = 70.0
    consensus: float = 0.6
    crowd_m: float = 30.0
    alone_m: float = 10.0
    crowd_area_m2: float = 4.0
    max_crowd: int = 1
    crowd_elong: float = 2.5
    new_roof: float = 2.0
    match_m: float = 5.0
    same_roof: float = 0.5
    was_dark: float = 0.6
    shift_m: float = 3.0
    max_gsd_m: float = 3.0
    recheck: bool = True
    roof_change: bool = True
    # Off by default: with each epoch's own sun estimate, trees and huts that cast shadows in
    # both epochs pass as towers in both (the demo scene gave 657 'existing' for 8 real ones).
    inventory: bool = False
    levels: tuple[float, ...] = (1.0, 1.6, 2.5)
    roof_reach_m: float = 15.0
    roof_box_m: float = 15.0
    min_contrast_ratio: float = 0.5
    contrast_box_m: float = 64.0
    was_bright: float = 0.6
    change_shift_m: float = 1.0
    max_roof_m2: float = 80.0
    roof_near_m: float = 5.0
    roof_patch: float = 0.7
    roof_colour: bool = True
    roof_colour_tol: float = 0.5
    roof_colour_bar: float = 3.0
    confirm_here: bool = True
    confirm_roof: float = 1.0
    confirm_dark: float = 1.3
    own_crowd: int = 1
    darkened: float = 0.4
    working_gsd_m: float = 1.0


@dataclass(frozen=True, slots=True)
class Tower:
    """One tower in pixel coordinates: its roof centre, shadow centroid and scores.

    Attributes
    ----------
    row, col : float
        Roof centre (the tower's position).
    strength : float
        Mean log-darkness of the shadow.
    roof : float
        Roof contrast.
    shadow_row, shadow_col : float
        Centroid of the shadow.
    label : int
        Shadow component label in the epoch's ``TowerMaps`` (0: none).
    """

    row: float
    col: float
    strength: float
    roof: float
    shadow_row: float
    shadow_col: float
    label: int = 0


@dataclass(frozen=True, slots=True)
class TowerMaps:
    """Per-pixel tower evidence of one epoch.

    Attributes
    ----------
    logratio : ndarray of float32, shape (band, row, col)
        ``log`` of each visible band over its local mean (0 on invalid pixels).
    shade : ndarray of float32
        Minus the band mean of ``logratio`` (darkness).
    roof : ndarray of float32
        Colour distance plus brightening of ``logratio`` (roof contrast).
    dark_thr, roof_thr : float
        This epoch's shadow and roof thresholds.
    valid : ndarray of bool
    gsd : float
    roof_floor : float
        Least roof a tower found in these maps may have (beyond ``roof_thr``): the change maps
        ask for the new-roof bar at once, so roofs that would be dropped are not searched.
    """

    logratio: F32
    shade: F32
    roof: F32
    dark_thr: float
    roof_thr: float
    valid: npt.NDArray[np.bool_]
    gsd: float
    roof_floor: float = 0.0


def sun_azimuth_to_pixel_dir(sun_azimuth_deg: float, affine: Affine) -> tuple[float, float]:
    """Unit (drow, dcol) pointing from an object to its shadow (anti-sun) on the tile grid."""
    az = math.radians(sun_azimuth_deg + 180.0)
    dx, dy = math.sin(az), math.cos(az)
    inv = ~Affine(affine.a, affine.b, 0.0, affine.d, affine.e, 0.0)
    dc, dr = inv @ (dx, dy)
    n = math.hypot(dr, dc) or 1.0
    return dr / n, dc / n


def pixel_dir_to_azimuth(shadow_dir: tuple[float, float], affine: Affine) -> float:
    """Sun azimuth (degrees clockwise from north) from a pixel shadow direction."""
    dr, dc = shadow_dir
    dx = affine.a * dc + affine.b * dr
    dy = affine.d * dc + affine.e * dr
    return (math.degrees(math.atan2(dx, dy)) + 180.0) % 360.0


def north_pixel_dir(affine: Affine) -> tuple[float, float]:
    """Unit (drow, dcol) pointing to map north on the tile grid."""
    return sun_azimuth_to_pixel_dir(180.0, affine)


TROPIC_DEG = 23.44
"""Latitude of the tropics: beyond them the sun never stands on the poleward side of the zenith."""


def shadow_half_dir(affine: Affine, latitude_deg: float) -> tuple[float, float] | None:
    """The half-plane shadows fall in at a satellite's overpass, as a unit (drow, dcol), or None.

    Map north beyond the Tropic of Cancer, map south beyond the Tropic of Capricorn (the sun
    stands on the equator's side of the zenith there all year); None between them, where it
    may stand on either side. The tower detector uses it where the sun direction is not given
    and cannot be estimated, and to reject estimates against it (:func:`estimate_shadow_dir`).
    """
    north = north_pixel_dir(affine)
    if latitude_deg > TROPIC_DEG:
        return north
    if latitude_deg < -TROPIC_DEG:
        return (-north[0], -north[1])
    return None


def darkness(ev: object, gsd: float, params: TowerParams) -> F32:
    """Relative darkness ``1 - gray / local mean`` of an epoch's evidence (0 on invalid pixels)."""
    g = np.asarray(ev.gray, np.float32)  # type: ignore[attr-defined]
    k = max(3, round(params.background_m / gsd) | 1)
    bg = ndimage.uniform_filter(g, k, mode="nearest")
    dark = np.float32(1.0) - g / np.maximum(bg, np.float32(1e-4))
    return np.where(ev.valid, dark, 0).astype(np.float32)  # type: ignore[attr-defined]


def _robust_sd(x: F32, valid: npt.NDArray[np.bool_]) -> float:
    """1.4826 × median absolute deviation over a subsample of valid pixels."""
    v = x[::4, ::4][valid[::4, ::4]]
    if v.size < 16:
        return 0.0
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def tower_maps(
    image: F32,
    valid: npt.NDArray[np.bool_],
    bands: tuple[str, ...],
    gsd: float,
    params: TowerParams,
) -> TowerMaps:
    """Log-ratio, darkness and roof-contrast maps of one epoch, with its relative thresholds."""
    idx = [i for i, b in enumerate(bands) if b.lower() in _VISIBLE] or list(range(image.shape[0]))
    k = max(3, round(params.background_m / gsd) | 1)
    lr = np.empty((len(idx), *image.shape[1:]), np.float32)
    invalid = None if valid.all() else ~valid
    for j, i in enumerate(idx):  # one band at a time: no full-tile float64 or band stacks
        x = np.asarray(image[i], np.float32)
        if invalid is not None:
            fill = float(np.median(x[valid])) if valid.any() else 0.0
            x = np.where(invalid, np.float32(fill), x)
        lx = np.log(np.maximum(x, 0) + _EPS)
        del x
        if params.tophat_m > 0:  # dark / bright dips narrower than the box; broad fields are 0
            t = max(3, round(params.tophat_m / gsd) | 1)
            lo = ndimage.maximum_filter(ndimage.minimum_filter(lx, t), t)  # opening
            hi = ndimage.minimum_filter(ndimage.maximum_filter(lx, t), t)  # closing
            lr[j] = (lx - lo) - (hi - lx)
            del lo, hi
        else:
            lr[j] = lx - np.log(ndimage.uniform_filter(np.exp(lx), k, mode="nearest"))
        del lx
        if gsd < 0.75:  # average pixel noise away at the finest pixels (as a (1, 3, 3) box)
            lr[j] = ndimage.uniform_filter(lr[j], 3, mode="nearest")
        if invalid is not None:
            lr[j][invalid] = 0
    m = lr[0].copy()  # band mean, summed in band order as ``lr.mean(axis=0)`` does
    for j in range(1, len(lr)):
        m += lr[j]
    m /= np.float32(len(lr))
    chroma = np.zeros_like(m)
    for j in range(len(lr)):
        d = lr[j] - m
        d *= d
        chroma += d
        del d
    np.sqrt(chroma, out=chroma)
    roof = chroma
    roof += np.maximum(m, 0)
    shade = np.negative(m, out=m)
    dark_thr = max(params.dark, params.dark_z * _robust_sd(shade, valid))
    roof_thr = max(params.roof, params.roof_z * _robust_sd(roof, valid))
    return TowerMaps(lr, shade, roof, dark_thr, roof_thr, valid, gsd)


@dataclass(frozen=True, slots=True)
class _Blobs:
    labels: npt.NDArray[np.int32]
    area: F64
    row: F64
    col: F64
    length: F64
    width: F64
    shade: F64
    slices: list


def _blobs(maps: TowerMaps, params: TowerParams, thr: float | None = None) -> _Blobs:
    mask = maps.shade >= np.float32(maps.dark_thr if thr is None else thr)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    del mask
    labels = labels.astype(np.int32, copy=False)
    flat = labels.ravel()
    on = np.flatnonzero(flat)
    lab = flat[on]
    r, c = np.divmod(on, labels.shape[1])
    r, c = r.astype(np.float64), c.astype(np.float64)
    area = np.bincount(lab, minlength=n + 1)[1:].astype(np.float64)
    safe = np.maximum(area, 1)

    def mean(w: F64) -> F64:
        return np.bincount(lab, weights=w, minlength=n + 1)[1:] / safe

    mr, mc = mean(r), mean(c)
    vrr = mean(r * r) - mr * mr + 1 / 12
    vcc = mean(c * c) - mc * mc + 1 / 12
    vrc = mean(r * c) - mr * mc
    half = 0.5 * (vrr + vcc)
    disc = np.sqrt(np.maximum(0.25 * (vrr - vcc) ** 2 + vrc * vrc, 0))
    length = np.sqrt(12 * (half + disc))  # extent of a uniform bar with these moments
    width = np.sqrt(12 * np.maximum(half - disc, 1 / 12))
    shade = mean(maps.shade.ravel()[on].astype(np.float64))
    return _Blobs(labels, area, mr, mc, length, width, shade, ndimage.find_objects(labels))


def _roof_of(
    maps: TowerMaps, b: _Blobs, k: int, params: TowerParams
) -> tuple[float, float, float] | None:
    """Roof centre (row, col) and contrast in the ring around shadow ``k`` (0-based), or None."""
    ring = max(1, round(params.ring_m / maps.gsd))
    sl = b.slices[k]
    r0 = max(sl[0].start - ring, 0)
    c0 = max(sl[1].start - ring, 0)
    r1 = min(sl[0].stop + ring, maps.shade.shape[0])
    c1 = min(sl[1].stop + ring, maps.shade.shape[1])
    lab = b.labels[r0:r1, c0:c1]
    own = lab == k + 1
    near = ndimage.binary_dilation(own, np.ones((3, 3), bool), iterations=ring) & (lab == 0)
    score = np.where(near, maps.roof[r0:r1, c0:c1], 0)
    top = float(score.max()) if score.size else 0.0
    if top < maps.roof_thr:
        return None
    w = np.where(score >= 0.6 * top, score, 0).astype(np.float64)
    rr, cc = np.indices(w.shape)
    s = w.sum()
    return r0 + float((w * rr).sum() / s), c0 + float((w * cc).sum() / s), top


_MAX_ROOF_PIX = 64
_DIRS8 = np.array([(math.sin(a), math.cos(a)) for a in np.arange(8) * math.pi / 8])


def _line_samples(
    shape: tuple[int, ...], r: npt.NDArray[np.int64], c: npt.NDArray[np.int64], half: float
) -> npt.NDArray[np.int64]:
    """Flat indices into a grid of ``shape``, shape (pixel, 8, sample), of lines through each
    pixel.

    The samples lie between ``half / 2`` and ``half`` pixels on both sides in 8 directions,
    outside a compact roof centred on the pixel (clipped to the grid).
    """
    dr, dc = _line_offsets(half)
    # the offsets rounded for even and for odd pixel indices (rint sends ties to even)
    rr = r[:, None, None] + dr[r & 1]
    cc = c[:, None, None] + dc[c & 1]
    np.clip(rr, 0, shape[0] - 1, out=rr)
    np.clip(cc, 0, shape[1] - 1, out=cc)
    rr *= shape[1]
    rr += cc
    return rr


@functools.lru_cache(maxsize=8)
def _line_offsets(half: float) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Row and column offsets, shape (parity, 8, sample), of :func:`_line_samples`' lines.

    ``rint(n + x)`` is ``n + rint(x)`` for an even whole ``n`` and ``n - 1 + rint(1 + x)`` for
    an odd one, so the offsets are rounded once per parity rather than per pixel.
    """
    d = np.arange(max(1.0, half / 2), max(2.0, half) + 0.5)
    d = np.concatenate([-d, d])
    x = _DIRS8[:, :, None] * d  # (8, 2, sample)
    even = np.rint(x).astype(np.int64)
    odd = np.rint(1 + x).astype(np.int64) - 1
    both = np.stack([even, odd])  # (parity, 8, 2, sample)
    return both[:, :, 0], both[:, :, 1]


def _colour_stand_out(
    logratio: F32,
    pix: npt.NDArray[np.int64],
    lines: npt.NDArray[np.int64],
    first: npt.NDArray[np.int64],
    bar: float,
) -> F64:
    """Per pixel: the least colour distance between it and the mean along a line through it,
    0 where below ``bar``.

    ``logratio`` is (band, pixel) over a window, ``pix`` flat indices into it and ``lines``
    :func:`_line_samples`; the distance is Euclidean between log-ratio vectors
    (all bands), and the direction that comes closest counts: a lane, a road or a field keeps
    its colour along its own direction, a compact roof differs from its surroundings in every
    direction. Direction ``first`` (per pixel; the one along which the roof contrast is
    strongest, a lane's own) is measured first: the least distance is at most that one, so a
    pixel below the bar there is not measured in the other seven.
    """
    # np.take gathers the same values as fancy indexing, at a third of the cost on these sizes
    v = np.take(logratio, pix, axis=1)
    i = np.arange(len(pix))
    one = np.take(logratio, lines[i, first], axis=1).mean(axis=2)
    one -= v
    out = np.zeros(len(pix))
    sel = np.flatnonzero(np.sqrt((one * one).sum(axis=0)) >= bar - 1e-9)
    if len(sel):
        along = np.take(logratio, lines[sel], axis=1).mean(axis=3)  # (band, pixel, direction)
        along -= v[:, sel, None]
        out[sel] = np.sqrt((along * along).sum(axis=0)).min(axis=1)
    out[out < bar] = 0.0
    return out


def _roof_toward_sun(
    maps: TowerMaps, b: _Blobs, k: int, params: TowerParams, sd: tuple[float, float]
) -> tuple[float, float, float] | None:
    """Roof centre and contrast on the sun side of shadow ``k`` (0-based), or None.

    The roof stands where the shadow begins, at its sun-side tip; where the shadow crosses a
    brighter surface (a lane, a road) its near part is too faint to threshold, so the roof is
    searched up to ``params.roof_reach_m`` beyond the tip, within the shadow's width (plus the
    ring, widening by half the distance from the tip: the estimated sun may be off by ~25°). The roof is the pixel there that stands out most above its surroundings' roof
    contrast (compact), placed at the centroid of its bright neighbours; its contrast is
    that excess.
    """
    g = maps.gsd
    ring = max(1, round(params.ring_m / g))
    reach = max(ring, round(params.roof_reach_m / g))
    sl = b.slices[k]
    r0, c0 = max(sl[0].start - reach, 0), max(sl[1].start - reach, 0)
    r1 = min(sl[0].stop + reach, maps.shade.shape[0])
    c1 = min(sl[1].stop + reach, maps.shade.shape[1])
    roof = maps.roof[r0:r1, c0:c1]
    need = max(maps.roof_thr, maps.roof_floor)
    if not roof.size or float(roof.max()) < need:  # nothing roof-like enough in reach
        return None
    lab = b.labels[r0:r1, c0:c1]
    rr = np.arange(lab.shape[0], dtype=np.float64)[:, None]
    cc = np.arange(lab.shape[1], dtype=np.float64)[None, :]
    along = rr * sd[0] + cc * sd[1]
    across = cc * sd[0] - rr * sd[1]
    own = lab == k + 1
    tip, a0, a1 = along[own].min(), across[own].min(), across[own].max()
    slack = ring + 0.5 * np.maximum(tip - along, 0)  # the sun's direction is known to ~25°
    zone = (
        (along >= tip - reach)
        & (along <= tip + ring)
        & (across >= a0 - slack)
        & (across <= a1 + slack)
        & ~own
        & maps.valid[r0:r1, c0:c1]
    )
    pix = np.flatnonzero(zone & (roof >= maps.roof_thr))
    if not len(pix):
        return None
    flat_roof = roof.ravel()
    pix = pix[np.argsort(-flat_roof[pix], kind="stable")[:_MAX_ROOF_PIX]]
    pr_all, pc_all = np.divmod(pix, roof.shape[1])
    lines = _line_samples(roof.shape, pr_all, pc_all, params.roof_box_m / (2 * g))
    # a lane, road or field edge keeps its contrast along its own direction, a compact roof has
    # none around it in any direction: the excess over the best line's mean
    support = np.take(flat_roof, lines).mean(axis=2)  # (pixel, direction)
    excess = flat_roof[pix] - support.max(axis=1).astype(np.float64)
    lr = maps.logratio[:, r0:r1, c0:c1]
    if params.roof_colour:
        first = support.argmax(axis=1)
        flat_lr = lr.reshape(lr.shape[0], -1)
        colour = _colour_stand_out(flat_lr, pix, lines, first, params.roof_colour_bar * need)
        # capped by the roof contrast: colour alone (a shadow's, a cloud's) is no roof
        excess = np.maximum(excess, np.minimum(colour, flat_roof[pix]))
    beyond = np.maximum(tip - along.ravel()[pix] - ring, 0) * (g / max(params.roof_near_m, 1e-6))
    best = int(np.argmax(np.where(excess >= maps.roof_thr, excess / (1 + beyond), -np.inf)))
    pr, pc = int(pr_all[best]), int(pc_all[best])
    top, stand_out = float(roof[pr, pc]), float(excess[best])
    if not np.isfinite(stand_out) or stand_out < need:
        return None
    max_px = params.max_roof_m2 / g**2
    if params.max_roof_m2 > 0 and not (
        _compact_roof(roof, pr, pc, max(params.roof_patch * top, maps.roof_thr), max_px)
        or (params.roof_colour and _compact_colour(lr, pr, pc, params.roof_colour_tol, max_px))
    ):
        return None
    w = np.where(
        zone & (roof >= 0.6 * top) & ((rr - pr) ** 2 + (cc - pc) ** 2 <= ring * ring), roof, 0
    )
    s = w.sum()
    return r0 + float((w * rr).sum() / s), c0 + float((w * cc).sum() / s), stand_out


def _compact_colour(logratio: F32, r: int, c: int, tol: float, max_px: float) -> bool:
    """Whether the pixels of (r, c)'s colour joined to it are at most ``max_px``
    (:func:`_small_patch`).

    Of its colour: log-ratio vectors within ``tol`` × the pixel's own (its colour contrast to
    the local mean) of its vector.
    """
    rows, cols = _patch_window(r, c, max_px)
    v = logratio[:, r, c]
    d = logratio[:, rows, cols] - v[:, None, None]
    near = np.sqrt((d * d).sum(axis=0)) <= tol * float(np.sqrt((v * v).sum()))
    return _small_patch(near, r - rows.start, c - cols.start, max_px)


def _compact_roof(roof: F32, r: int, c: int, level: float, max_px: float) -> bool:
    """Whether the patch of ``roof >= level`` joined to (r, c) has at most ``max_px`` pixels
    (:func:`_small_patch`)."""
    rows, cols = _patch_window(r, c, max_px)
    return _small_patch(roof[rows, cols] >= level, r - rows.start, c - cols.start, max_px)


def _patch_window(r: int, c: int, max_px: float) -> tuple[slice, slice]:
    """Rows and columns of the window of ``2 sqrt(max_px)`` around (r, c) a patch is judged in."""
    half = math.ceil(math.sqrt(max_px)) + 1
    return slice(max(r - half, 0), r + half + 1), slice(max(c - half, 0), c + half + 1)


def _small_patch(win: npt.NDArray[np.bool_], r: int, c: int, max_px: float) -> bool:
    """Whether the pixels of ``win`` joined to (r, c) (window coordinates) are at most ``max_px``
    and do not reach the window's edge (a patch reaching out of it is too large anyway); True
    where (r, c) itself is not in ``win`` (nothing to measure)."""
    if not win[r, c]:
        return True
    rim = win[0].any() or win[-1].any() or win[:, 0].any() or win[:, -1].any()
    if not rim and win.sum() <= max_px:  # everything in the window is small: no labelling
        return True
    lab, _ = ndimage.label(win, structure=np.ones((3, 3), bool))
    own = lab == lab[r, c]
    edge = own[0].any() or own[-1].any() or own[:, 0].any() or own[:, -1].any()
    return bool(own.sum() <= max_px and not edge)


def _candidates(
    maps: TowerMaps,
    params: TowerParams,
    crowd: bool,
    sd: tuple[float, float] | None = None,
) -> list[Tower]:
    """Shadow components shaped like a tower's with a roof beside them (no direction test).

    Components are taken at several darkness levels (``params.levels`` × the epoch's
    threshold): at the lowest a tower's shadow often touches a longer dark structure (a fence
    shadow, the dark rim beside a bright lane, a tree line) and fails the shape test; higher up
    the tower's denser shadow stands alone. A shadow found at a lower level is not repeated.
    The crowd test counts each level's own compact objects (:func:`_crowd_objects`).
    One level's components are held at a time.
    """
    out: list[Tower] = []
    sep = params.alone_m / (2 * maps.gsd)
    for f in params.levels:
        b = _blobs(maps, params, maps.dark_thr * f)
        level = _level_candidates(maps, b, params, crowd, sd, taken=out, sep=sep)
        del b
        out += _first_apart(level, sep)  # pieces of one shadow at this level: the first stands
    return out


def _first_apart(towers: list[Tower], sep: float) -> list[Tower]:
    """In order, the towers whose shadow is farther than ``sep`` from every one kept before."""
    return _kept_apart(towers, lambda t: (t.shadow_row, t.shadow_col), sep)


def _kept_apart(
    towers: list[Tower], where: Callable[[Tower], tuple[float, float]], radius: float
) -> list[Tower]:
    """In order, the towers farther than ``radius`` (at ``where``) from every one kept before.

    Kept towers are filed in a grid of side ``radius``: any within ``radius`` of a tower lies
    in the 3 x 3 cells around its own, so only those are compared.
    """
    kept: list[Tower] = []
    cells: dict[tuple[int, int], list[tuple[float, float]]] = {}
    side = max(radius, 1e-9)
    for t in towers:
        r, c = where(t)
        i, j = math.floor(r / side), math.floor(c / side)
        if all(
            math.hypot(r - ro, c - co) > radius
            for di in (-1, 0, 1)
            for dj in (-1, 0, 1)
            for ro, co in cells.get((i + di, j + dj), ())
        ):
            kept.append(t)
            cells.setdefault((i, j), []).append((r, c))
    return kept


def _crowd_objects(b: _Blobs, params: TowerParams, g: float) -> F64:
    """(row, col) of the compact dark objects a tower must not stand among.

    Villages, orchards and mottled fields give many compact shadows close together; the pieces
    of a fence's shadow or of the dark rim beside a lane are elongated (longer than
    ``params.crowd_elong`` × their width) and do not count: towers stand beside them.
    """
    a_m2 = b.area * g * g
    objs = (a_m2 >= params.crowd_area_m2) & (a_m2 <= 600.0) & (b.length * g <= 45.0)
    objs &= b.length <= params.crowd_elong * b.width
    return np.column_stack([b.row[objs], b.col[objs]]) if objs.any() else np.full((1, 2), -1e9)


def _level_candidates(
    maps: TowerMaps,
    b: _Blobs,
    params: TowerParams,
    crowd: bool,
    sd: tuple[float, float] | None,
    *,
    taken: list[Tower] = (),  # type: ignore[assignment]
    sep: float = 0.0,
) -> list[Tower]:
    """Tower-shaped components of one level with their roof; none within ``sep`` of ``taken``.

    Shadows closer than ``sep`` to a shadow found at a lower level are skipped before their
    (costly) roof search.
    """
    g = maps.gsd
    a_m2 = b.area * g * g
    shaped = (
        (a_m2 >= params.min_area_m2)
        & (a_m2 <= params.max_area_m2)
        & (b.length * g <= params.max_length_m)
        & (b.width * g <= params.max_width_m)
        & (b.shade >= params.min_shade)
    )
    cand = np.flatnonzero(shaped)
    if crowd and len(cand):
        objs = _crowd_objects(b, params, g)
        tree = cKDTree(objs)
        pts = np.column_stack([b.row[cand], b.col[cand]])
        far = tree.query_ball_point(pts, params.crowd_m / g, return_length=True)
        close = tree.query_ball_point(pts, params.alone_m / g, return_length=True)
        cand = cand[np.asarray(far) - np.asarray(close) <= params.max_crowd]
    if len(taken) and len(cand):
        tree = cKDTree([(o.shadow_row, o.shadow_col) for o in taken])
        d, _ = tree.query(np.column_stack([b.row[cand], b.col[cand]]))
        cand = cand[d > sep]
    out = []
    for k in cand.tolist():
        roof = (
            _roof_of(maps, b, k, params) if sd is None else _roof_toward_sun(maps, b, k, params, sd)
        )
        if roof is None:
            continue
        out.append(Tower(roof[0], roof[1], float(b.shade[k]), roof[2], b.row[k], b.col[k], k + 1))
    return out


def _unit(t: Tower) -> tuple[float, float]:
    dr, dc = t.shadow_row - t.row, t.shadow_col - t.col
    n = math.hypot(dr, dc) or 1.0
    return dr / n, dc / n


def consensus_direction(
    towers: list[Tower], params: TowerParams, *, top: int = 12
) -> tuple[float, float] | None:
    """Shadow direction (drow, dcol) the strongest candidates agree on, or None.

    The ``top`` candidates by shadow darkness × roof contrast vote with their roof → shadow unit
    vectors (weighted circular mean); at least three are needed, and a mean resultant length of
    ``params.consensus``.
    """
    if len(towers) < 3:
        return None
    best = sorted(towers, key=lambda t: (-t.strength * t.roof, t.row, t.col))[:top]
    u = np.array([_unit(t) for t in best])
    w = np.array([t.strength * t.roof for t in best])
    m = (u * w[:, None]).sum(axis=0) / w.sum()
    r = float(np.hypot(*m))
    if r < params.consensus:
        return None
    return float(m[0] / r), float(m[1] / r)


def shadow_direction(
    maps: TowerMaps, *, n_dirs: int = 36, min_asym: float = 0.005, min_h1: float = 0.5
) -> tuple[float, float] | None:
    """Anti-sun direction (drow, dcol) of an epoch from how bright things cast dark neighbours.

    Everything that stands up (trees, houses, towers, walls) is lit on the sun side and throws
    its shadow to the anti-sun side, so "bright here, dark a few metres further" is more common
    along the shadow direction than against it. For ``n_dirs`` directions ``h`` (at 2 and 4 m)
    this scores ``mean(roof(x) · shade⁺(x + h))``; flat texture, field edges and stripes score
    alike both ways and cancel in the difference to ``-h``. The direction with the largest
    asymmetry (the phase of its first harmonic over the directions) wins when that harmonic's
    amplitude is at least ``min_asym`` of the best score and carries ``min_h1`` of the
    asymmetry's energy (a sun gives a smooth cosine; noise and texture do not); else None.
    """
    g = maps.gsd
    step = max(1, int(1.0 / g))  # ~1 m working pixels
    valid = maps.valid[::step, ::step]  # subsample first: no full-tile temporaries
    roof = np.where(valid, maps.roof[::step, ::step], 0).astype(np.float32)
    dark = np.where(valid, np.maximum(maps.shade[::step, ::step], 0), 0).astype(np.float32)
    gw = g * step
    h, w = roof.shape
    ang = np.arange(n_dirs) * (2 * math.pi / n_dirs)
    score = np.zeros(n_dirs)
    done: dict[tuple[int, int], float] = {}  # directions that round to the same pixel offset
    for d_m in (2.0, 4.0):
        for i, a in enumerate(ang.tolist()):
            dr, dc = round(math.cos(a) * d_m / gw), round(math.sin(a) * d_m / gw)
            if abs(dr) >= h or abs(dc) >= w:
                continue
            if (dr, dc) not in done:
                ra = roof[max(0, -dr) : h - max(0, dr), max(0, -dc) : w - max(0, dc)]
                sb = dark[max(0, dr) : h - max(0, -dr), max(0, dc) : w - max(0, -dc)]
                done[dr, dc] = float(np.mean(ra * sb)) if ra.size else 0.0
            score[i] += done[dr, dc]
    asym = score - np.roll(score, n_dirs // 2)
    # a true sun gives a smooth, cosine-like asymmetry: its first harmonic carries the energy
    h1 = complex((asym * np.cos(ang)).sum(), (asym * np.sin(ang)).sum()) * 2 / n_dirs
    energy = float((asym**2).mean())
    peak = abs(h1)
    if energy <= 0 or peak < min_asym * float(score.max()) or 0.5 * peak**2 < min_h1 * energy:
        return None
    a = math.atan2(h1.imag, h1.real)
    return math.cos(a), math.sin(a)


def estimate_shadow_dir(
    maps: TowerMaps, params: TowerParams, north: tuple[float, float] | None = None
) -> tuple[float, float] | None:
    """An epoch's anti-sun direction (:func:`shadow_direction`), or None where it cannot tell.

    With ``north`` (the poleward half shadows fall in, :func:`shadow_half_dir`), an estimate
    pointing away from it is rejected (None): north of the tropics the sun stands in the
    southern sky at any satellite's overpass, so shadows point north; an estimate against that
    comes from texture, not shadows (a scene of fields and woods with few things standing up:
    on scenes of a second renderer, ``benchmarks/crosscheck.py``, the estimates were 80-180
    degrees off and every tower failed the direction test). The detector then uses the
    half-plane, as where nothing is estimated.
    """
    d = shadow_direction(maps)
    if d is not None and north is not None and d[0] * north[0] + d[1] * north[1] <= 0:
        return None
    return d


def find_towers(
    maps: TowerMaps,
    params: TowerParams,
    shadow_dir: tuple[float, float] | None = None,
    *,
    north: tuple[float, float] | None = (-1.0, 0.0),
    crowd: bool = True,
) -> tuple[list[Tower], tuple[float, float] | None]:
    """Towers of one epoch and the shadow direction used (None: the poleward half-plane).

    Parameters
    ----------
    maps : TowerMaps
    params : TowerParams
    shadow_dir : (drow, dcol) or None
        Known anti-sun direction; None estimates it (:func:`estimate_shadow_dir`).
    north : (drow, dcol) or None
        The half-plane shadows fall in (:func:`shadow_half_dir`), the fallback when no
        direction can be estimated; None (the tropics): any direction.
    crowd : bool
        Drop towers in crowds of shadows (villages); off for the other epoch's lookup.
    """
    if maps.gsd >= params.max_gsd_m:
        return [], shadow_dir
    sd = estimate_shadow_dir(maps, params, north) if shadow_dir is None else shadow_dir
    cands = (
        _candidates(maps, params, crowd, sd) if sd is not None else _candidates(maps, params, crowd)
    )
    cos_max = math.cos(math.radians(params.max_angle_deg))
    kept = []
    for t in cands:
        u = _unit(t)
        if sd:
            ok = u[0] * sd[0] + u[1] * sd[1] >= cos_max
        else:
            ok = north is None or u[0] * north[0] + u[1] * north[1] > 0
        if ok:
            kept.append(t)
    return _suppress(kept, params.alone_m / maps.gsd), sd


def _suppress(towers: list[Tower], radius: float) -> list[Tower]:
    """Keep the strongest of towers closer than ``radius`` pixels (pieces of one object)."""
    order = sorted(towers, key=lambda t: (-t.strength * t.roof, t.row, t.col))
    out = _kept_apart(order, lambda t: (t.row, t.col), radius)
    return sorted(out, key=lambda t: (t.row, t.col))


def _best_shift_diff(a: F32, b: F32 | None, rc: F64, half: int, shift: int) -> F64:
    """Per point: the smallest mean |a - b shifted| over a (2 half + 1)² window, shifts ≤ shift.

    Windows reaching past the tile repeat its edge pixels; ``b=None`` stands for zeros (the
    window's own mean magnitude). Only the windows are gathered: no padded copies of the tile;
    the shifts are compared at once (sliding-window views), summed in float64.
    """
    h, w = a.shape[1:]
    out = np.empty(len(rc))
    k = np.arange(-half, half + 1)
    n = 2 * half + 1
    kk = np.arange(-half - shift, half + shift + 1)
    for i, (r, c) in enumerate(np.rint(rc).astype(np.int64).tolist()):
        # C order, as the old padded slices: the float32 means then sum in the same order
        pa = np.ascontiguousarray(
            a[:, np.clip(r + k, 0, h - 1)[:, None], np.clip(c + k, 0, w - 1)[None, :]]
        )
        if b is None:
            out[i] = float(np.abs(pa).mean())
            continue
        pb = np.ascontiguousarray(
            b[:, np.clip(r + kk, 0, h - 1)[:, None], np.clip(c + kk, 0, w - 1)[None, :]]
        )
        # every shift at once: (band, dr, dc, n, n) views of pb, float64 sums
        win = np.lib.stride_tricks.sliding_window_view(pb, (n, n), axis=(1, 2))
        d = np.abs(win - pa[:, None, None], dtype=np.float64)
        out[i] = float(d.mean(axis=(0, 3, 4)).min())
    return out


def classify_towers(
    towers: list[Tower],
    this: TowerMaps,
    other: TowerMaps,
    other_towers: list[Tower],
    params: TowerParams,
    *,
    absent_status: str,
) -> list[tuple[str, float, Tower]]:
    """Status of one epoch's towers by comparing the tower's place with the other epoch.

    A tower is *existing* when the other epoch has a tower within ``match_m`` (a shadow that
    moved with the sun keeps its roof), when the other epoch shows the same roof there (mean
    log-ratio colour difference below ``same_roof`` × the roof's own contrast, best over
    ``shift_m`` of misregistration), or when the other epoch was already dark over the shadow.

    Returns
    -------
    list of (status, score, Tower)
        ``absent_status`` (``"new"`` or ``"removed"``) where none of the tests holds.
    """
    if not towers:
        return []
    g = this.gsd
    near = np.zeros(len(towers), bool)
    if other_towers:
        tree = cKDTree(np.array([(t.row, t.col) for t in other_towers]))
        d, _ = tree.query(np.array([(t.row, t.col) for t in towers]))
        near = d <= params.match_m / g + 2.0
    shift = max(1, round(params.shift_m / g))
    half = max(1, round(1.0 / g))
    roof_rc = np.array([(t.row, t.col) for t in towers])
    diff = _best_shift_diff(this.logratio, other.logratio, roof_rc, half, shift)
    own = _best_shift_diff(this.logratio, None, roof_rc, half, 0)
    same_roof = diff < params.same_roof * own
    sh_rc = np.array([(t.shadow_row, t.shadow_col) for t in towers])
    dark_before = _window_max(ndimage.uniform_filter(other.shade, 3), sh_rc, shift)
    # in units of each epoch's own shadow threshold: haze, season and stretch change contrast
    rel = other.dark_thr / max(this.dark_thr, 1e-6)
    was_dark = dark_before >= params.was_dark * rel * np.array([t.strength for t in towers])
    there = near | same_roof | was_dark
    out = []
    for t, th in zip(towers, there.tolist()):
        score = round(min(1.0, 0.4 + 0.5 * t.strength + t.roof), 4)
        out.append(("existing" if th else absent_status, score, t))
    return out


def _window_max(img: F32, rc: F64, radius: int) -> F64:
    """Maximum of ``img`` in the square of half-width ``radius`` around each (row, col)."""
    k = np.arange(-radius, radius + 1)
    r0 = np.rint(rc[:, 0]).astype(np.int64)
    c0 = np.rint(rc[:, 1]).astype(np.int64)
    rr = np.clip(r0[:, None, None] + k[None, :, None], 0, img.shape[0] - 1)
    cc = np.clip(c0[:, None, None] + k[None, None, :], 0, img.shape[1] - 1)
    return img[rr, cc].reshape(len(rc), -1).max(axis=1).astype(np.float64)


def loose_tower_params(params: TowerParams) -> TowerParams:
    """Looser thresholds for the epoch a tower is looked up in."""
    return replace(
        params,
        dark=params.dark * 0.7,
        dark_z=params.dark_z * 0.7,
        min_shade=params.min_shade * 0.7,
        roof=params.roof * 0.7,
        roof_z=params.roof_z * 0.7,
        max_area_m2=params.max_area_m2 * 1.5,
        max_length_m=params.max_length_m * 1.5,
        max_width_m=params.max_width_m * 1.5,
        max_angle_deg=90.0,
    )


def _score(t: Tower) -> float:
    return round(min(1.0, 0.4 + 0.5 * t.strength + t.roof), 4)


def change_maps(this: TowerMaps, other: TowerMaps, size: int, params: TowerParams) -> TowerMaps:
    """``this`` epoch's darkness and roof contrast less the other epoch's nearby maximum.

    The maximum over ``size`` × ``size`` pixels absorbs misregistration: what remains is dark or
    roof-like in ``this`` epoch only.
    """
    shade = ndimage.maximum_filter(other.shade, size)
    shade = np.subtract(this.shade, shade, out=shade)  # in place: one full-tile map each
    if params.roof_change:
        roof = ndimage.maximum_filter(other.roof, size)
        roof = np.subtract(this.roof, roof, out=roof)
    else:
        roof = this.roof
    dark_thr = max(params.dark, params.dark_z * _robust_sd(shade, this.valid))
    dark_thr = min(dark_thr, max(params.dark, this.dark_thr))
    floor = _new_roof_bar(this, params)  # the bar a changed tower's roof must pass
    return replace(this, shade=shade, roof=roof, dark_thr=dark_thr, roof_floor=floor)


def detect_towers(
    before: F32,
    after: F32,
    valid: npt.NDArray[np.bool_],
    bands: tuple[str, ...],
    gsd: float,
    params: TowerParams,
    *,
    north: tuple[float, float] | None,
    shadow_dirs: tuple[tuple[float, float] | None, tuple[float, float] | None] = (None, None),
) -> tuple[list[tuple[str, float, Tower]], tuple[tuple[float, float] | None, ...]]:
    """Towers of both epochs with their status, and the shadow direction used per epoch.

    Parameters
    ----------
    before, after : ndarray of float32, shape (band, row, col)
    valid : ndarray of bool
    bands : tuple of str
    gsd : float
    params : TowerParams
    north : (drow, dcol) or None
        The half-plane shadows fall in where the sun is not known (:func:`shadow_half_dir`).
    shadow_dirs : pair of (drow, dcol) or None
        Known anti-sun directions per epoch (None: estimated).

    Returns
    -------
    towers : list of (status, score, Tower)
        *after*'s towers (``new`` or ``existing``) and *before*'s ``removed`` ones.
    dirs : (before, after)
        The shadow directions used (None where none could be estimated).
    """
    if gsd >= params.max_gsd_m:
        return [], shadow_dirs
    f = working_factor(gsd, params)
    if f > 1:  # towers are 2-8 m: found on f x f block means, placed back on the full grid
        found, dirs = detect_towers(
            *_block_means(before, after, valid, f),
            bands,
            gsd * f,
            params,
            north=north,
            shadow_dirs=shadow_dirs,
        )
        return [(st, sc, _on_full_grid(t, f)) for st, sc, t in found], dirs
    mb = tower_maps(before, valid, bands, gsd, params)
    ma = tower_maps(after, valid, bands, gsd, params)
    shift = _change_window(gsd, params)
    da = shadow_dirs[1] if shadow_dirs[1] is not None else estimate_shadow_dir(ma, params, north)
    db = shadow_dirs[0] if shadow_dirs[0] is not None else estimate_shadow_dir(mb, params, north)
    new_a, da = find_towers(change_maps(ma, mb, shift, params), params, da, north=north)
    gone_b, db = find_towers(change_maps(mb, ma, shift, params), params, db, north=north)
    memo: dict[tuple[int, tuple[float, float] | None], list[Tower]] = {}

    def solo(maps: TowerMaps, d: tuple[float, float] | None) -> list[Tower]:
        # an epoch's own full-bar towers: asked for by both _confirmed and _inventory
        key = (id(maps), d)
        if key not in memo:
            memo[key] = find_towers(maps, params, d, north=north)[0]
        return memo[key]

    def changed(found, this, other, img, img_other, d_this, d_other, absent):
        # per-tower tests, the cheap ones first: the other epoch's and this epoch's full
        # detector runs (classify_towers, _confirmed) only for what is left
        bar = _new_roof_bar(this, params)
        cand = [(absent, _score(t), t) for t in found if t.roof >= bar]
        cand = _observable(cand, this, other, params)
        cand = _uncrowded(cand, this, params)
        cand = _darkened(cand, img, img_other, valid, bands, this, params)
        if not cand:
            return []
        if params.recheck:
            ts = [c[2] for c in cand]
            other_any = _towers_near(other, ts, loose_tower_params(params), d_other, north)
            cand = classify_towers(ts, this, other, other_any, params, absent_status=absent)
        cand = [c for c in cand if c[0] == absent]
        return _confirmed(cand, this, params, d_this, north, towers_of=solo)

    new = changed(new_a, ma, mb, after, before, da, db, "new")
    gone = changed(gone_b, mb, ma, before, after, db, da, "removed")
    out = new + gone
    if params.inventory:
        out += _inventory(ma, mb, out, params, da, db, north, towers_of=solo)
    return out, (db, da)


def new_tower_candidates(
    before: F32,
    after: F32,
    valid: npt.NDArray[np.bool_],
    bands: tuple[str, ...],
    gsd: float,
    params: TowerParams,
    *,
    north: tuple[float, float] | None,
    shadow_dir: tuple[float, float] | None = None,
) -> list[Tower]:
    """*after*'s new-tower candidates before the later tests of :func:`detect_towers`.

    Compact new shadows with a roof past the new-roof bar (:func:`find_towers` on the change
    maps) where the *before* could have shown the tower's absence (:func:`_observable`), in
    full-grid pixel coordinates. :func:`detect_towers` goes on with its own tests (crowds,
    darkening, the other epoch's towers, confirmation in the own epoch), which keep about as
    many false candidates as true ones; other evidence (the hybrid method's network) can
    confirm them instead. ``shadow_dir`` is the *after*'s anti-sun direction (None: estimated).
    """
    if gsd >= params.max_gsd_m:
        return []
    f = working_factor(gsd, params)
    if f > 1:
        found = new_tower_candidates(
            *_block_means(before, after, valid, f),
            bands,
            gsd * f,
            params,
            north=north,
            shadow_dir=shadow_dir,
        )
        return [_on_full_grid(t, f) for t in found]
    mb = tower_maps(before, valid, bands, gsd, params)
    ma = tower_maps(after, valid, bands, gsd, params)
    da = shadow_dir if shadow_dir is not None else estimate_shadow_dir(ma, params, north)
    found, _ = find_towers(
        change_maps(ma, mb, _change_window(gsd, params), params), params, da, north=north
    )
    bar = _new_roof_bar(ma, params)
    cand = _observable([("new", _score(t), t) for t in found if t.roof >= bar], ma, mb, params)
    return [c[2] for c in cand]


def _block_means(
    before: F32, after: F32, valid: npt.NDArray[np.bool_], f: int
) -> tuple[F32, F32, npt.NDArray[np.bool_]]:
    """Both epochs and the valid mask on ``f`` x ``f`` blocks (a block is valid when all is)."""
    return (
        block_mean(before, f),
        block_mean(after, f),
        block_mean(valid.astype(np.float32), f) >= 1.0,
    )


def _change_window(gsd: float, params: TowerParams) -> int:
    """Side in pixels of the window the change maps take the other epoch's maximum over."""
    return 2 * max(1, round(params.change_shift_m / gsd)) + 1


def working_factor(gsd: float, params: TowerParams) -> int:
    """Whole factor by which towers are looked for on a coarser grid (1: the tile's own).

    Towers are 2-8 m across: ``params.working_gsd_m`` resolves them (the detector's thresholds
    were set there), and each halving of the pixel size would quadruple the work for nothing.
    """
    return max(1, math.floor(params.working_gsd_m / gsd + 1e-6))


def _on_full_grid(t: Tower, f: int) -> Tower:
    """A tower found on ``f`` x ``f`` blocks, in the full grid's pixel coordinates."""
    c = (f - 1) / 2  # block k's centre is pixel f k + (f - 1) / 2
    return replace(
        t,
        row=t.row * f + c,
        col=t.col * f + c,
        shadow_row=t.shadow_row * f + c,
        shadow_col=t.shadow_col * f + c,
        label=0,
    )


def _towers_near(
    maps: TowerMaps,
    near: list[Tower],
    params: TowerParams,
    direction: tuple[float, float] | None,
    north: tuple[float, float] | None,
) -> list[Tower]:
    """The epoch's towers (no crowd test) around the given ones: windows, not the whole tile.

    Each window reaches ``match_m`` plus a shadow's length and the roof search beyond the
    tower (and 10 m more), so the towers that matter for a match lie wholly inside. Without a
    known direction the whole tile is searched (the direction is estimated from all of it).
    """
    if not near:
        return []
    if direction is None:
        return find_towers(maps, params, None, north=north, crowd=False)[0]
    g = maps.gsd
    m = round((params.match_m + params.max_length_m + params.roof_reach_m + 10.0) / g)
    h, w = maps.shade.shape
    out: dict[tuple[float, float], Tower] = {}
    for t in near:
        r0, c0 = max(round(t.row) - m, 0), max(round(t.col) - m, 0)
        r1, c1 = min(round(t.row) + m + 1, h), min(round(t.col) + m + 1, w)
        sub = replace(
            maps,
            logratio=maps.logratio[:, r0:r1, c0:c1],
            shade=maps.shade[r0:r1, c0:c1],
            roof=maps.roof[r0:r1, c0:c1],
            valid=maps.valid[r0:r1, c0:c1],
        )
        for o in find_towers(sub, params, direction, north=north, crowd=False)[0]:
            o = replace(
                o,
                row=o.row + r0,
                col=o.col + c0,
                shadow_row=o.shadow_row + r0,
                shadow_col=o.shadow_col + c0,
                label=0,
            )
            out.setdefault((round(o.row, 3), round(o.col, 3)), o)
    return [out[k] for k in sorted(out)]


def local_contrast(maps: TowerMaps, rc: F64, box_m: float) -> F64:
    """An epoch's local texture contrast around points (0 where too few valid pixels).

    The median absolute step of ``maps.shade`` between valid neighbours ~1 m apart (along rows
    and columns) over a ``box_m`` square around each (row, col): the epoch's own fine-texture
    noise. Haze or a flat stretch scales it down with the texture; one small object or the
    two edges of a lane or a fence in the box hardly move it.
    """
    g = maps.gsd
    half = max(2, round(box_m / (2 * g)))
    step = max(1, round(1.0 / g))
    h, w = maps.shade.shape
    out = np.zeros(len(rc))
    for i, (r, c) in enumerate(np.rint(rc).astype(np.int64).tolist()):
        sl = (
            slice(max(r - half, 0), min(r + half + 1, h), step),
            slice(max(c - half, 0), min(c + half + 1, w), step),
        )
        steps = neighbour_steps(maps.shade[sl].astype(np.float64), maps.valid[sl])
        if steps.size >= 16:
            out[i] = float(np.median(steps))
    return out


def _observable(
    found: list[tuple[str, float, Tower]],
    this: TowerMaps,
    other: TowerMaps,
    params: TowerParams,
) -> list[tuple[str, float, Tower]]:
    """Changed towers where the other epoch could have shown the tower's absence.

    Each epoch is judged against its own local texture contrast (:func:`local_contrast`
    around the tower): where the other epoch shows less than ``params.min_contrast_ratio`` of
    this epoch's (haze or thin cloud over it, a washed-out or re-stretched epoch), its
    texture, tower or not, cannot stand out there, and any compact dark-and-bright piece of the
    same texture only *looks* new in the contrastier epoch. No change is claimed there.

    A new shadow falls on ground that was ordinary before: where the other epoch was brighter
    than its surroundings over the shadow (by ``params.was_bright`` × its own shadow threshold:
    a sand bank the river now covers, a bright field, a roof), this epoch's darkness there is
    that bright thing gone, not a shadow cast.
    """
    if not found:
        return []
    rc = np.array([((t.row + t.shadow_row) / 2, (t.col + t.shadow_col) / 2) for _, _, t in found])
    mine = local_contrast(this, rc, params.contrast_box_m)
    theirs = local_contrast(other, rc, params.contrast_box_m)
    ok = theirs >= params.min_contrast_ratio * mine
    # the shadow's place in the other epoch, in units of that epoch's own shadow threshold
    k = max(1, round(1.5 / this.gsd))
    h, w = other.shade.shape
    for i, (_, _, t) in enumerate(found):
        r, c = round(t.shadow_row), round(t.shadow_col)
        win = other.shade[max(r - k, 0) : min(r + k + 1, h), max(c - k, 0) : min(c + k + 1, w)]
        if win.size and float(win.mean()) <= -params.was_bright * other.dark_thr:
            ok[i] = False
    return [f for f, keep in zip(found, ok.tolist()) if keep]


def _uncrowded(
    found: list[tuple[str, float, Tower]], this: TowerMaps, params: TowerParams
) -> list[tuple[str, float, Tower]]:
    """Changed towers that stand alone among their own epoch's compact shadows.

    The crowd test of :func:`find_towers` counts objects of the *change* maps, where a wood's
    shadows cancel; in the epoch itself a tower in a wood or an orchard stands among many.
    Counted as there: compact objects (:func:`_crowd_objects`) at this epoch's shadow
    threshold between ``alone_m`` and ``crowd_m`` of the tower's shadow, at most
    ``params.own_crowd``. Each tower's surroundings are labelled in a window reaching 45 m (the
    longest object counted) beyond ``crowd_m``, so every object that counts lies whole inside
    it; components cut by its edge are left out (they reach farther than a counted one).
    """
    if not found or params.own_crowd < 0:
        return found
    g = this.gsd
    half = math.ceil((params.crowd_m + 45.0) / g) + 1
    h, w = this.shade.shape
    keep = []
    for f in found:
        t = f[2]
        r, c = round(t.shadow_row), round(t.shadow_col)
        r0, c0 = max(r - half, 0), max(c - half, 0)
        r1, c1 = min(r + half + 1, h), min(c + half + 1, w)
        win = replace(this, shade=np.ascontiguousarray(this.shade[r0:r1, c0:c1]))
        b = _blobs(win, params)
        cut = np.zeros(len(b.area), bool)  # components reaching an inner window edge
        for k, sl in enumerate(b.slices):
            rs, cs = sl
            cut[k] = (
                (rs.start == 0 and r0 > 0)
                or (cs.start == 0 and c0 > 0)
                or (rs.stop == r1 - r0 and r1 < h)
                or (cs.stop == c1 - c0 and c1 < w)
            )
        objs = _crowd_objects(replace(b, area=np.where(cut, 0.0, b.area)), params, g)
        d = np.hypot(objs[:, 0] - (t.shadow_row - r0), objs[:, 1] - (t.shadow_col - c0))
        n = int((d <= params.crowd_m / g).sum() - (d <= params.alone_m / g).sum())
        if n <= params.own_crowd:
            keep.append(f)
    return keep


def _band_log_mean(image: F32, idx: list[int], rows: slice, cols: slice) -> F64:
    """Mean over the visible bands of ``log(image + eps)`` in a window, per pixel (float64)."""
    x = np.asarray(image[:, rows, cols][idx], np.float64)  # the window first: no tile copy
    return np.log(np.maximum(x, 0) + float(_EPS)).mean(axis=0)


def _darkened(
    found: list[tuple[str, float, Tower]],
    this_img: F32,
    other_img: F32,
    valid: npt.NDArray[np.bool_],
    bands: tuple[str, ...],
    this: TowerMaps,
    params: TowerParams,
) -> list[tuple[str, float, Tower]]:
    """Changed towers whose shadow place really got darker than it was in the other epoch.

    The tower maps measure darkness against the local mean, so ground that stayed as it was
    reads as a new "shadow" when its surroundings brightened (a sand bank the river left, a
    harvested field beside a wood). A cast shadow darkens the ground itself: the mean log
    brightness of the shadow's pixels (dark in this epoch) within ~1.5 m of its centroid must
    have dropped by
    ``params.darkened`` × this epoch's shadow threshold more than the tile's median change
    (season, gain and stretch move the whole tile; the pair is normalised first).
    """
    if not found or params.darkened <= 0:
        return found
    idx = [i for i, b in enumerate(bands) if b.lower() in _VISIBLE] or list(range(len(bands)))
    sub = (slice(None, None, 4), slice(None, None, 4))
    ref = _band_log_mean(this_img, idx, *sub) - _band_log_mean(other_img, idx, *sub)
    v = valid[sub]
    base = float(np.median(ref[v])) if v.any() else 0.0
    k = max(1, round(1.5 / this.gsd))
    h, w = valid.shape
    keep = []
    for f in found:
        r, c = round(f[2].shadow_row), round(f[2].shadow_col)
        rows = slice(max(r - k, 0), min(r + k + 1, h))
        cols = slice(max(c - k, 0), min(c + k + 1, w))
        ok = valid[rows, cols]
        dark = ok & (this.shade[rows, cols] >= this.dark_thr)  # the shadow's pixels, no roof
        if not ok.any():
            continue
        d = _band_log_mean(this_img, idx, rows, cols) - _band_log_mean(other_img, idx, rows, cols)
        d = d[dark] if dark.any() else d[ok]
        if base - float(d.mean()) >= params.darkened * this.dark_thr:
            keep.append(f)
    return keep


def _new_roof_bar(maps: TowerMaps, params: TowerParams) -> float:
    """The roof contrast a changed (new or removed) tower must reach in its own epoch's maps."""
    return params.new_roof * maps.roof_thr


def _confirmed(
    found: list[tuple[str, float, Tower]],
    maps: TowerMaps,
    params: TowerParams,
    direction: tuple[float, float] | None,
    north: tuple[float, float] | None,
    *,
    towers_of: Callable[[TowerMaps, tuple[float, float] | None], list[Tower]] | None = None,
) -> list[tuple[str, float, Tower]]:
    """Keep change-path towers that the epoch they stand in also shows on its own, full bar.

    The change maps find whatever got darker or changed colour (a new house, a harvested
    strip, a cloud-shadow edge); a tower must also be a compact roof with its shadow in its own
    epoch, the bar an ``existing`` tower has to pass in both. Held-out scenes gave 3 % precision
    for new towers without this check. A changed tower's roof must also stand out by
    ``params.new_roof`` × the roof threshold (on tuning scenes true new roofs did, ~2/3 of the
    phantoms from textured or re-coloured epochs did not).

    "Shows on its own" is either the epoch's full detector finding a tower within
    ``alone_m`` or (``params.confirm_here``) the epoch's own maps showing the roof and the
    shadow where the change maps found them (:func:`_shown_alone`): the full detector loses a
    roof beside a bright lane or a shadow joined to a fence's. It only runs when needed.
    """
    if not found:
        return []
    bar = _new_roof_bar(maps, params)
    found = [f for f in found if f[2].roof >= bar]
    shown = (
        _shown_alone(maps, [f[2] for f in found], params)
        if params.confirm_here
        else np.zeros(len(found), bool)
    )
    if shown.all():  # every one shown where it was found: the full detector is not needed
        return found
    solo = (
        towers_of(maps, direction)
        if towers_of is not None
        else find_towers(maps, params, direction, north=north)[0]
    )
    tol = params.alone_m / maps.gsd
    return [
        f
        for f, here in zip(found, shown.tolist())
        if here or any(math.hypot(f[2].row - t.row, f[2].col - t.col) <= tol for t in solo)
    ]


def _shown_alone(
    maps: TowerMaps, towers: list[Tower], params: TowerParams
) -> npt.NDArray[np.bool_]:
    """Per tower: whether its own epoch shows both its roof and its shadow where they were found.

    The roof contrast (best pixel within ~1 m of the roof centre) must reach the epoch's roof
    threshold and the shadow's darkness (mean over ~3 m around its centroid)
    ``params.confirm_dark`` × the epoch's shadow threshold: the change maps found a roof and a shadow, and the epoch alone shows
    them too, even where its full detector loses them (the roof beside a bright lane fails the
    line test, the shadow joins a fence's shadow at every level).
    """
    if not towers:
        return np.zeros(0, bool)
    g = maps.gsd
    near = max(1, round(1.0 / g))
    roof_rc = np.array([(t.row, t.col) for t in towers])
    sh_rc = np.array([(t.shadow_row, t.shadow_col) for t in towers])
    roof = _window_max(maps.roof, roof_rc, near)
    k = max(1, round(1.5 / g))
    h, w = maps.shade.shape
    dark = np.zeros(len(towers))
    for i, (r, c) in enumerate(np.rint(sh_rc).astype(np.int64).tolist()):
        win = maps.shade[max(r - k, 0) : min(r + k + 1, h), max(c - k, 0) : min(c + k + 1, w)]
        dark[i] = float(win.mean()) if win.size else 0.0
    return (roof >= params.confirm_roof * maps.roof_thr) & (
        dark >= params.confirm_dark * maps.dark_thr
    )


def _inventory(
    ma: TowerMaps,
    mb: TowerMaps,
    taken: list[tuple[str, float, Tower]],
    params: TowerParams,
    da: tuple[float, float] | None,
    db: tuple[float, float] | None,
    north: tuple[float, float] | None,
    *,
    towers_of: Callable[[TowerMaps, tuple[float, float] | None], list[Tower]] | None = None,
) -> list[tuple[str, float, Tower]]:
    """*after*'s full-bar towers not yet reported: ``existing`` or (optionally) ``new``.

    An existing tower must show a compact roof with its shadow in each epoch on its own (the
    same evidence a new one needs); one epoch's texture (trees, huts, field corners) rarely
    repeats in both. With ``AFTER_ONLY_NEW``, a full-bar *after* tower that the *before* epoch
    shows no trace of (no tower with loose thresholds, not the same roof, not as dark; see
    :func:`classify_towers`) is ``new``.
    """
    g = ma.gsd

    def full_bar(maps: TowerMaps, d: tuple[float, float] | None) -> list[Tower]:
        if towers_of is not None:
            return towers_of(maps, d)
        return find_towers(maps, params, d, north=north)[0]

    pts = [o[2] for o in taken]
    ta = [
        t
        for t in full_bar(ma, da)
        if all(math.hypot(t.row - o.row, t.col - o.col) > params.alone_m / g for o in pts)
    ]
    if not ta:
        return []
    # before's shadows disagree on the sun: its texture makes towers, report no existing
    # ones; too few to vote: after's direction stands in
    noisy = db is None and len(_candidates(mb, params, True)) >= 3
    db = da if db is None else db
    tb = full_bar(mb, db)
    both = np.zeros(len(ta), bool)
    if tb and not noisy:
        tree = cKDTree(np.array([(t.row, t.col) for t in tb]))
        d, _ = tree.query(np.array([(t.row, t.col) for t in ta]))
        both = d <= params.match_m / g
    out = [("existing", _score(t), t) for t, ok in zip(ta, both.tolist()) if ok]
    if AFTER_ONLY_NEW:
        rest = [t for t, ok in zip(ta, both.tolist()) if not ok and not _near_any(t, tb, g, params)]
        loose = find_towers(mb, loose_tower_params(params), db, north=north, crowd=False)[0]
        out += [
            o
            for o in classify_towers(rest, ma, mb, loose, params, absent_status="new")
            if o[0] == "new"
        ]
    return out


def _near_any(t: Tower, others: list[Tower], gsd: float, params: TowerParams) -> bool:
    return any(math.hypot(t.row - o.row, t.col - o.col) <= params.match_m / gsd for o in others)


AFTER_ONLY_NEW = False
"""Report full-bar *after* towers with no trace in *before* as new (see :func:`_inventory`).
Off: on tuning seeds it tripled new-tower recall but put ~5 phantom new towers per km into
``nothing_new`` scenes (textured epochs give hundreds of single-epoch candidates)."""
