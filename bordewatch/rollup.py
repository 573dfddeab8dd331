"""Per-kilometre and per-area statistics from detections, the border and the tiles' coverage.

Everything is measured along the border's geodesic chainage. Lines are densified (vertices about
10 m apart), every vertex is located on the border (``Border.locate``), and each short piece
between two vertices is attributed to the kilometres its chainage interval spans, in proportion,
so that the metres of a line are conserved exactly. "Fenced" is the fraction of a kilometre's
border length alongside which some fence runs: the union of the fence pieces' chainage intervals.

The figures follow what Human Rights Watch reported (share of border fenced before and after, km
of new and reinforced fence, fence layers, guard posts and their spacing, patrol lanes), each with
its denominator, so that a reader can compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from bordewatch.border import GEOD, Border
from bordewatch.errors import BordewatchError

__all__ = [
    "AFTER_STATUSES",
    "AREA_COLUMNS",
    "BEFORE_STATUSES",
    "SEGMENT_COLUMNS",
    "Headline",
    "LinePieces",
    "headline",
    "line_pieces",
    "per_area",
    "rollup_per_km",
]

SEGMENT_COLUMNS: tuple[str, ...] = (
    "km_start",
    "km_end",
    "analysed",
    "fenced_before",
    "fenced_after",
    "new_fence_m",
    "upgraded_fence_m",
    "new_patrol_lane_m",
    "watchtowers_before",
    "watchtowers_after",
    "new_watchtowers",
)
AREA_COLUMNS: tuple[str, ...] = (
    "area",
    "km_start",
    "km_end",
    "border_km",
    "analysed_km",
    "analysed_pct",
    "fenced_before_km",
    "fenced_before_pct",
    "fenced_after_km",
    "fenced_after_pct",
    "new_fence_km",
    "upgraded_fence_km",
    "new_patrol_lane_km",
    "watchtowers_before",
    "watchtowers_after",
    "new_watchtowers",
)
#: Statuses of objects that existed in the *before* / *after* epoch.
BEFORE_STATUSES: tuple[str, ...] = ("existing", "removed", "upgraded")
AFTER_STATUSES: tuple[str, ...] = ("existing", "new", "upgraded")
#: Patrol lanes counted as "new or widened".
_LANE_STATUSES: tuple[str, ...] = ("new", "upgraded")
_DENSIFY_DEG = 1e-4  # ~8–11 m between vertices at these latitudes
# A piece whose chainage interval is longer than this many times its own length (plus the slack)
# jumped between two parts of a winding border line; it covers no border length.
_JUMP_FACTOR = 3.0
_JUMP_SLACK_M = 30.0
# Fence layers: another fence 10–600 m away on the same side, within ~one bin of chainage.
_LAYER_MIN_M = 10.0
_LAYER_MAX_M = 600.0
_LAYER_BIN_M = 20.0

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


# ---------------------------------------------------------------------- line pieces
@dataclass(frozen=True, slots=True)
class LinePieces:
    """Short pieces of densified lines, located on the border.

    Attributes
    ----------
    feature : ndarray of intp
        Row position (in the frame given to :func:`line_pieces`) of each piece's line.
    km0, km1 : ndarray of float64
        Chainage of the piece's two ends, km.
    offset_m : ndarray of float64
        Signed distance of the piece's midpoint from the border (positive on the left).
    length_m : ndarray of float64
        Geodesic length of the piece, metres.
    jump : ndarray of bool
        True where the chainage interval is far longer than the piece (a projection jump
        across a bend): such a piece covers no border length.
    """

    feature: IntArray
    km0: FloatArray
    km1: FloatArray
    offset_m: FloatArray
    length_m: FloatArray
    jump: npt.NDArray[np.bool_]

    def select(self, keep: npt.NDArray[np.bool_]) -> LinePieces:
        """Return the pieces where ``keep`` is true."""
        return LinePieces(
            self.feature[keep],
            self.km0[keep],
            self.km1[keep],
            self.offset_m[keep],
            self.length_m[keep],
            self.jump[keep],
        )


def line_pieces(lines: gpd.GeoSeries, border: Border) -> LinePieces:
    """Densify (Multi)LineStrings in EPSG:4326 and locate every piece on the border.

    Parameters
    ----------
    lines : GeoSeries
        Line geometries in EPSG:4326 (empty or missing geometries contribute nothing).
    border : Border

    Returns
    -------
    LinePieces
    """
    geoms = shapely.segmentize(np.asarray(lines.values, dtype=object), _DENSIFY_DEG)
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    coords, coord_of = shapely.get_coordinates(parts, return_index=True)
    if len(coords) < 2:
        empty = np.zeros(0)
        return LinePieces(np.zeros(0, np.intp), empty, empty, empty, empty, np.zeros(0, bool))
    same = coord_of[1:] == coord_of[:-1]
    km, off, _ = border.locate(coords[:, 0], coords[:, 1])
    a, b = coords[:-1][same], coords[1:][same]
    length = np.asarray(GEOD.inv(a[:, 0], a[:, 1], b[:, 0], b[:, 1])[2], dtype=np.float64)
    km0, km1 = km[:-1][same], km[1:][same]
    jump = np.abs(km1 - km0) * 1000.0 > _JUMP_FACTOR * length + _JUMP_SLACK_M
    return LinePieces(
        feature=np.asarray(part_of[coord_of[:-1][same]], dtype=np.intp),
        km0=km0,
        km1=km1,
        offset_m=(off[:-1][same] + off[1:][same]) / 2.0,
        length_m=length,
        jump=jump,
    )


# ---------------------------------------------------------------------- binning helpers
def _bin_of(edges: FloatArray, km: FloatArray) -> IntArray:
    idx = np.searchsorted(edges, km, side="right") - 1
    return np.clip(idx, 0, len(edges) - 2).astype(np.intp)


def _distribute(
    edges: FloatArray, lo: FloatArray, hi: FloatArray, weight: FloatArray
) -> FloatArray:
    """Spread ``weight`` of each interval [lo, hi] over the bins in proportion to its overlap.

    Zero-width intervals put all their weight in the bin holding ``lo``. The total is conserved.
    """
    out = np.zeros(len(edges) - 1)
    lo = np.clip(lo, edges[0], edges[-1])
    hi = np.clip(hi, edges[0], edges[-1])
    first, last = _bin_of(edges, lo), _bin_of(edges, hi)
    width = hi - lo
    point = (width <= 1e-12) | (first == last)
    np.add.at(out, first[point], weight[point])
    span = ~point
    for step in range(int((last - first)[span].max(initial=0)) + 1):
        k = first[span] + step
        ok = k <= last[span]
        k = k[ok]
        overlap = np.minimum(hi[span][ok], edges[k + 1]) - np.maximum(lo[span][ok], edges[k])
        share = np.clip(overlap, 0.0, None) / width[span][ok]
        np.add.at(out, k, weight[span][ok] * share)
    return out


def _covered_km(edges: FloatArray, lo: FloatArray, hi: FloatArray) -> FloatArray:
    """Length (km) of each bin covered by the union of the intervals [lo, hi]."""
    if len(lo) == 0:
        return np.zeros(len(edges) - 1)
    order = np.argsort(lo, kind="stable")
    lo, hi = lo[order], hi[order]
    reach = np.maximum.accumulate(hi)
    starts = np.concatenate([[True], lo[1:] > reach[:-1]])
    group = np.cumsum(starts) - 1
    m_lo = lo[starts]
    m_hi = np.zeros(len(m_lo))
    np.maximum.at(m_hi, group, hi)
    before = np.concatenate([[0.0], np.cumsum(m_hi - m_lo)])
    k = np.searchsorted(m_lo, edges, side="right") - 1
    inside = np.clip(edges - m_lo[np.maximum(k, 0)], 0.0, (m_hi - m_lo)[np.maximum(k, 0)])
    cum = np.where(k >= 0, before[np.maximum(k, 0)] + inside, 0.0)
    return np.diff(cum)


def _side_mask(offset_m: FloatArray, side: str) -> npt.NDArray[np.bool_]:
    if side == "left":
        return offset_m >= 0
    if side == "right":
        return offset_m < 0
    return np.ones(len(offset_m), dtype=bool)


def _check_inputs(detections: gpd.GeoDataFrame, side: str) -> gpd.GeoDataFrame:
    if side not in ("left", "right", "both"):
        raise BordewatchError(f"side must be 'left', 'right' or 'both', got {side!r}")
    missing = {"class", "status"} - set(detections.columns)
    if missing and len(detections):
        raise BordewatchError(f"detections lack the column(s) {sorted(missing)}")
    if len(detections) == 0:
        return gpd.GeoDataFrame(
            {"class": pd.Series(dtype=str), "status": pd.Series(dtype=str)},
            geometry=gpd.GeoSeries([], crs="EPSG:4326"),
        )
    if detections.crs is not None and not detections.crs.equals("EPSG:4326"):
        detections = detections.to_crs("EPSG:4326")
    keep = detections.geometry.notna() & ~detections.geometry.is_empty
    return detections[keep]


# ---------------------------------------------------------------------- per km
def _analysed(edges: FloatArray, tiles: gpd.GeoDataFrame) -> FloatArray:
    if len(tiles) == 0:
        return np.zeros(len(edges) - 1)
    done = (
        tiles["status"].astype(str).eq("done").to_numpy()
        if "status" in tiles
        else np.ones(len(tiles), bool)
    )
    frac = np.where(done, tiles["analysed_fraction"].astype(float).fillna(0.0).to_numpy(), 0.0)
    a = tiles["km_start"].astype(float).to_numpy()[:, None]
    b = tiles["km_end"].astype(float).to_numpy()[:, None]
    overlap = np.clip(np.minimum(b, edges[None, 1:]) - np.maximum(a, edges[None, :-1]), 0.0, None)
    return np.clip((overlap * frac[:, None]).sum(axis=0) / np.diff(edges), 0.0, 1.0)


def _line_metrics(
    edges: FloatArray, lines: gpd.GeoDataFrame, border: Border, side: str
) -> dict[str, FloatArray]:
    pieces = line_pieces(lines.geometry, border)
    pieces = pieces.select(_side_mask(pieces.offset_m, side))
    cls = lines["class"].astype(str).to_numpy()[pieces.feature]
    status = lines["status"].astype(str).to_numpy()[pieces.feature]
    lo = np.minimum(pieces.km0, pieces.km1)
    hi = np.where(pieces.jump, lo, np.maximum(pieces.km0, pieces.km1))
    width = np.diff(edges)

    def metres(which: npt.NDArray[np.bool_]) -> FloatArray:
        return _distribute(edges, lo[which], hi[which], pieces.length_m[which])

    def fenced(statuses: tuple[str, ...]) -> FloatArray:
        sel = (cls == "fence") & np.isin(status, statuses) & ~pieces.jump
        lo_c = np.clip(lo[sel], edges[0], edges[-1])
        hi_c = np.clip(hi[sel], edges[0], edges[-1])
        return np.clip(_covered_km(edges, lo_c, hi_c) / width, 0.0, 1.0)

    return {
        "fenced_before": fenced(BEFORE_STATUSES),
        "fenced_after": fenced(AFTER_STATUSES),
        "new_fence_m": metres((cls == "fence") & (status == "new")),
        "upgraded_fence_m": metres((cls == "fence") & (status == "upgraded")),
        "new_patrol_lane_m": metres((cls == "patrol_lane") & np.isin(status, _LANE_STATUSES)),
    }


def _point_metrics(
    edges: FloatArray, points: gpd.GeoDataFrame, border: Border, side: str
) -> dict[str, FloatArray]:
    xy = shapely.get_coordinates(points.geometry.values)
    km, off, _ = border.locate(xy[:, 0], xy[:, 1]) if len(xy) else (np.zeros(0),) * 3
    keep = _side_mask(np.asarray(off, dtype=float), side)
    status = points["status"].astype(str).to_numpy()[keep]
    bins = _bin_of(edges, np.clip(np.asarray(km)[keep], edges[0], edges[-1]))
    n = len(edges) - 1

    def count(statuses: tuple[str, ...]) -> FloatArray:
        return np.bincount(bins[np.isin(status, statuses)], minlength=n).astype(float)

    return {
        "watchtowers_before": count(BEFORE_STATUSES),
        "watchtowers_after": count(AFTER_STATUSES),
        "new_watchtowers": count(("new",)),
    }


def rollup_per_km(
    detections: gpd.GeoDataFrame,
    tiles: gpd.GeoDataFrame,
    border: Border,
    km_range: tuple[float, float],
    *,
    side: str = "both",
) -> gpd.GeoDataFrame:
    """Roll detections and coverage up per border kilometre.

    Parameters
    ----------
    detections : GeoDataFrame
        Columns ``class``, ``status`` and geometry (EPSG:4326 or any CRS, reprojected here);
        watchtowers are points, fences and patrol lanes (Multi)LineStrings.
    tiles : GeoDataFrame
        Columns ``km_start``, ``km_end``, ``analysed_fraction`` and (optional) ``status``; only
        ``done`` tiles count as analysed.
    border : Border
    km_range : tuple of float
        The run's chainage range; one row per km from its start, the last one possibly partial.
    side : {"both", "left", "right"}
        Count only objects on this side of the line (by the sign of their offset).

    Returns
    -------
    GeoDataFrame
        :data:`SEGMENT_COLUMNS` plus ``geometry`` (the border segment, EPSG:4326); fractions are
        rounded to 4 decimals, metres to 0.1 m, so every output quoting them agrees.
        Objects located beyond the range count in its first or last km.
    """
    detections = _check_inputs(detections, side)
    seg = border.segments(1.0, km_range)
    edges = np.concatenate([seg["km_start"].to_numpy(), seg["km_end"].to_numpy()[-1:]])
    cls = detections["class"].astype(str)
    is_point = detections.geometry.geom_type.isin(["Point", "MultiPoint"]).to_numpy()
    lines = detections[cls.isin(["fence", "patrol_lane"]).to_numpy() & ~is_point]
    points = detections[cls.eq("watchtower").to_numpy() & is_point]
    values = {"analysed": _analysed(edges, tiles)}
    values |= _line_metrics(edges, lines, border, side)
    values |= _point_metrics(edges, points, border, side)
    out = gpd.GeoDataFrame(
        {
            "km_start": np.round(edges[:-1], 3),
            "km_end": np.round(edges[1:], 3),
            "analysed": np.round(values["analysed"], 4),
            "fenced_before": np.round(values["fenced_before"], 4),
            "fenced_after": np.round(values["fenced_after"], 4),
            "new_fence_m": np.round(values["new_fence_m"], 1),
            "upgraded_fence_m": np.round(values["upgraded_fence_m"], 1),
            "new_patrol_lane_m": np.round(values["new_patrol_lane_m"], 1),
            "watchtowers_before": values["watchtowers_before"].astype(np.int64),
            "watchtowers_after": values["watchtowers_after"].astype(np.int64),
            "new_watchtowers": values["new_watchtowers"].astype(np.int64),
        },
        geometry=seg.geometry.values,
        crs="EPSG:4326",
    )
    return out


# ---------------------------------------------------------------------- per area
def _area_weights(segments: gpd.GeoDataFrame, areas: gpd.GeoDataFrame) -> FloatArray:
    """Share (0–1) of each km row inside each area: by km range if given, else by geometry."""
    a0 = segments["km_start"].to_numpy(float)[None, :]
    a1 = segments["km_end"].to_numpy(float)[None, :]
    if {"km_start", "km_end"} <= set(areas.columns):
        b0 = areas["km_start"].to_numpy(float)[:, None]
        b1 = areas["km_end"].to_numpy(float)[:, None]
        return np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0.0, None) / (a1 - a0)
    polys = np.asarray(areas.to_crs("EPSG:4326").geometry.to_numpy(), dtype=object)
    lines = np.asarray(segments.geometry.to_numpy(), dtype=object)
    inter = shapely.intersection(lines[None, :], polys[:, None])
    total = shapely.length(lines)[None, :]
    return np.where(total > 0, shapely.length(inter) / np.where(total > 0, total, 1.0), 0.0)


def _area_row(name: str, segments: gpd.GeoDataFrame, w: FloatArray) -> dict[str, object]:
    km = (segments["km_end"] - segments["km_start"]).to_numpy(float) * w
    inside = np.flatnonzero(w > 0)

    def total(col: str) -> float:
        return float(np.sum(segments[col].to_numpy(float) * w))

    border_km = float(km.sum())
    analysed_km = float(np.sum(km * segments["analysed"].to_numpy(float)))
    fb = float(np.sum(km * segments["fenced_before"].to_numpy(float)))
    fa = float(np.sum(km * segments["fenced_after"].to_numpy(float)))

    def pct(x: float, of: float) -> float:
        return round(min(100.0, 100.0 * x / of), 1) if of > 0 else float("nan")

    return {
        "area": name,
        "km_start": round(float(segments["km_start"].iloc[inside[0]]), 3),
        "km_end": round(float(segments["km_end"].iloc[inside[-1]]), 3),
        "border_km": round(border_km, 2),
        "analysed_km": round(analysed_km, 2),
        "analysed_pct": pct(analysed_km, border_km),
        "fenced_before_km": round(fb, 2),
        "fenced_before_pct": pct(fb, analysed_km),
        "fenced_after_km": round(fa, 2),
        "fenced_after_pct": pct(fa, analysed_km),
        "new_fence_km": round(total("new_fence_m") / 1000.0, 2),
        "upgraded_fence_km": round(total("upgraded_fence_m") / 1000.0, 2),
        "new_patrol_lane_km": round(total("new_patrol_lane_m") / 1000.0, 2),
        "watchtowers_before": round(total("watchtowers_before")),
        "watchtowers_after": round(total("watchtowers_after")),
        "new_watchtowers": round(total("new_watchtowers")),
    }


def per_area(segments: gpd.GeoDataFrame, areas: gpd.GeoDataFrame | None = None) -> pd.DataFrame:
    """Sum the per-km rows over areas (km ranges or polygons) and over the whole run.

    Parameters
    ----------
    segments : GeoDataFrame
        The output of :func:`rollup_per_km`.
    areas : GeoDataFrame, optional
        Areas with a name (column ``area`` or ``name``) and either ``km_start``/``km_end``
        columns or polygon geometries; e.g. :func:`bordewatch.border.hrw_areas` for the default
        line. Only areas overlapping the run get a row.

    Returns
    -------
    DataFrame
        :data:`AREA_COLUMNS`; one row per overlapping area, then ``"whole run"``. A km row that
        lies partly inside an area counts in proportion (so counts are rounded). Percentages of
        fenced border are of the analysed km; NaN where nothing was analysed.
    """
    rows: list[dict[str, object]] = []
    if areas is not None and len(areas) and len(segments):
        names = next((areas[c] for c in ("area", "name") if c in areas.columns), None)
        labels = (
            names.astype(str).tolist()
            if names is not None
            else [f"area {i + 1}" for i in range(len(areas))]
        )
        weights = _area_weights(segments, areas)
        for label, w in zip(labels, weights):
            if np.any(w > 1e-9):
                rows.append(_area_row(label, segments, np.where(w > 1e-9, w, 0.0)))
    if len(segments):
        rows.append(_area_row("whole run", segments, np.ones(len(segments))))
    return pd.DataFrame(rows, columns=list(AREA_COLUMNS))


# ---------------------------------------------------------------------- headline
@dataclass(frozen=True, slots=True)
class Headline:
    """The run's headline figures, each with its denominator (km, metres, counts)."""

    km_start: float
    km_end: float
    border_km: float
    analysed_km: float
    fenced_before_km: float
    fenced_after_km: float
    new_fence_km: float
    layered_new_fence_km: float
    upgraded_fence_km: float
    fence_after_km: float
    watchtowers_before: int
    watchtowers_after: int
    new_watchtowers: int
    new_patrol_lane_km: float

    @property
    def analysed_pct(self) -> float:
        """Analysed share of the run's border length, %."""
        return _pct(self.analysed_km, self.border_km)

    @property
    def fenced_before_pct(self) -> float:
        """Fenced share of the analysed border before, %."""
        return _pct(self.fenced_before_km, self.analysed_km)

    @property
    def fenced_after_pct(self) -> float:
        """Fenced share of the analysed border after, %."""
        return _pct(self.fenced_after_km, self.analysed_km)

    @property
    def new_fence_per_km(self) -> float:
        """New fence km per km of analysed border."""
        return self.new_fence_km / self.analysed_km if self.analysed_km > 0 else float("nan")

    @property
    def tower_spacing_border_m(self) -> float:
        """Metres of analysed border per watchtower (after)."""
        return _per(self.analysed_km * 1000.0, self.watchtowers_after)

    @property
    def tower_spacing_fence_m(self) -> float:
        """Metres of fence (after) per watchtower (after)."""
        return _per(self.fence_after_km * 1000.0, self.watchtowers_after)

    def lines(self) -> list[str]:
        """The figures as sentences for printing (ASCII arrows, so any terminal shows them)."""
        return [
            f"Imagery for both dates covers {self.analysed_km:,.1f} of {self.border_km:,.1f} km"
            f" of border (km {self.km_start:g}-{self.km_end:g}; {_fmt_pct(self.analysed_pct)})",
            f"Fenced: {self.fenced_before_km:,.1f} km ({_fmt_pct(self.fenced_before_pct)}) before"
            f" -> {self.fenced_after_km:,.1f} km ({_fmt_pct(self.fenced_after_pct)}) after,"
            f" of {self.analysed_km:,.1f} km analysed",
            f"New fence line: {self.new_fence_km:,.1f} km ({_fmt_num(self.new_fence_per_km, 2)} km"
            f" per km of analysed border), of which {self.layered_new_fence_km:,.1f} km are"
            " second or third layers",
            f"Reinforced/upgraded fence: {self.upgraded_fence_km:,.1f} km",
            f"Watchtowers and guard posts: {self.watchtowers_before:,} before ->"
            f" {self.watchtowers_after:,} after ({self.new_watchtowers:,} new; one every"
            f" {_fmt_num(self.tower_spacing_border_m, 0)} m of border, every"
            f" {_fmt_num(self.tower_spacing_fence_m, 0)} m of fence)",
            f"Patrol lanes: new or widened {self.new_patrol_lane_km:,.1f} km",
        ]


def _pct(x: float, of: float) -> float:
    return min(100.0, 100.0 * x / of) if of > 0 else float("nan")


def _per(x: float, n: int) -> float:
    return x / n if n > 0 else float("nan")


def _fmt_pct(x: float) -> str:
    return "n/a %" if np.isnan(x) else f"{x:.0f} %"


def _fmt_num(x: float, digits: int) -> str:
    return "n/a" if np.isnan(x) else f"{x:,.{digits}f}"


def _layered_m(pieces: LinePieces, is_new: npt.NDArray[np.bool_]) -> float:
    """Metres of new fence with another fence 10–600 m away on the same side at the same km.

    Against an existing/upgraded fence either side counts; against another *new* fence only
    one closer to the border does, so a brand-new pair counts one layer, not two.
    """
    if not np.any(is_new):
        return 0.0
    mid_km = (pieces.km0 + pieces.km1) / 2.0
    group = (
        np.floor(mid_km * 1000.0 / _LAYER_BIN_M).astype(np.int64) * 2 + (pieces.offset_m < 0) + 2
    )
    dist = np.abs(pieces.offset_m)
    q = np.flatnonzero(is_new)
    hit = np.zeros(len(q), dtype=bool)
    for pool, lower_only in ((~is_new, False), (is_new, True)):
        idx = np.flatnonzero(pool)
        if len(idx) == 0:
            continue
        for dbin in (-2, 0, 2):  # neighbouring chainage bins, same side
            hit |= _any_in_band(
                group[idx], dist[idx], pieces.feature[idx],
                group[q] + dbin, dist[q], pieces.feature[q], lower_only,
            )  # fmt: skip
    return float(pieces.length_m[q][hit].sum())


def _any_in_band(
    g_pool: npt.NDArray[np.int64],
    d_pool: FloatArray,
    f_pool: IntArray,
    g_q: npt.NDArray[np.int64],
    d_q: FloatArray,
    f_q: IntArray,
    lower_only: bool,
) -> npt.NDArray[np.bool_]:
    """For each query, whether a pool piece of another line lies in the distance band.

    Pieces are found by binary search on packed integer keys (group, distance) and, to discount
    the query's own line, (line, group, distance).
    """
    any_key = np.sort(_band_key(g_pool, d_pool))
    own_key = np.sort(_band_key(g_pool, d_pool, f_pool))
    found = np.zeros(len(g_q), dtype=bool)
    bands = [(-_LAYER_MAX_M, -_LAYER_MIN_M)] + (
        [] if lower_only else [(_LAYER_MIN_M, _LAYER_MAX_M)]
    )
    for lo, hi in bands:
        n_any = np.searchsorted(any_key, _band_key(g_q, d_q + hi), side="right") - np.searchsorted(
            any_key, _band_key(g_q, d_q + lo), side="left"
        )
        n_own = np.searchsorted(
            own_key, _band_key(g_q, d_q + hi, f_q), side="right"
        ) - np.searchsorted(own_key, _band_key(g_q, d_q + lo, f_q), side="left")
        found |= n_any - n_own > 0
    return found


_DIST_BITS = 17  # decimetres, up to 13 km from the line
_GROUP_BITS = 21  # 20 m chainage bins x 2 sides: up to 20,000 km of border


def _band_key(
    group: npt.NDArray[np.int64], dist_m: FloatArray, feature: IntArray | None = None
) -> npt.NDArray[np.int64]:
    dm = np.clip(np.round(dist_m * 10.0), 0, 2**_DIST_BITS - 1).astype(np.int64)
    key = (np.clip(group, 0, 2**_GROUP_BITS - 1).astype(np.int64) << _DIST_BITS) + dm
    if feature is not None:
        key += feature.astype(np.int64) << (_DIST_BITS + _GROUP_BITS)
    return key


def headline(
    segments: gpd.GeoDataFrame,
    detections: gpd.GeoDataFrame,
    border: Border,
    km_range: tuple[float, float],
    *,
    side: str = "both",
) -> Headline:
    """Compute the headline figures of a run.

    Parameters
    ----------
    segments : GeoDataFrame
        The per-km rows (:func:`rollup_per_km`); the km, fenced and count figures are their sums,
        so the headline agrees with the tables.
    detections : GeoDataFrame
        For the length of fence standing after (tower spacing) and the fence layers.
    border : Border
    km_range : tuple of float
    side : {"both", "left", "right"}

    Returns
    -------
    Headline
    """
    detections = _check_inputs(detections, side)
    width = (segments["km_end"] - segments["km_start"]).to_numpy(float)
    fences = detections[detections["class"].astype(str).eq("fence").to_numpy()]
    fences = fences[~fences.geometry.geom_type.isin(["Point", "MultiPoint"]).to_numpy()]
    pieces = line_pieces(fences.geometry, border)
    mid = (pieces.km0 + pieces.km1) / 2.0
    in_range = (mid >= km_range[0] - 1e-9) & (mid <= km_range[1] + 1e-9)
    pieces = pieces.select(_side_mask(pieces.offset_m, side) & in_range)
    status = fences["status"].astype(str).to_numpy()[pieces.feature]
    after = pieces.select(np.isin(status, AFTER_STATUSES))
    after_status = status[np.isin(status, AFTER_STATUSES)]

    def km(col: str) -> float:
        return float(np.sum(segments[col].to_numpy(float) * width))

    return Headline(
        km_start=float(km_range[0]),
        km_end=float(km_range[1]),
        border_km=float(width.sum()),
        analysed_km=km("analysed"),
        fenced_before_km=km("fenced_before"),
        fenced_after_km=km("fenced_after"),
        new_fence_km=float(segments["new_fence_m"].sum()) / 1000.0,
        layered_new_fence_km=_layered_m(after, after_status == "new") / 1000.0,
        upgraded_fence_km=float(segments["upgraded_fence_m"].sum()) / 1000.0,
        fence_after_km=float(after.length_m.sum()) / 1000.0,
        watchtowers_before=int(segments["watchtowers_before"].sum()),
        watchtowers_after=int(segments["watchtowers_after"].sum()),
        new_watchtowers=int(segments["new_watchtowers"].sum()),
        new_patrol_lane_km=float(segments["new_patrol_lane_m"].sum()) / 1000.0,
    )
