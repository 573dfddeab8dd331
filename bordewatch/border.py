"""The border line: loading, validation, orientation and geodesic kilometre chainage.

A :class:`Border` holds one oriented LineString in lon/lat (EPSG:4326). Chainage is geodesic on the
WGS84 ellipsoid: km 0 is the line's first vertex. ``locate`` gives, for any point, the km of the
nearest border point, the signed distance from the line (positive on the *left* of the line's
direction) and the side's name. Everything downstream works in a local metric CRS chosen here
(``utm_crs``) for any stretch of the line.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pyproj
import shapely
from pyproj import Geod

from bordewatch.errors import BorderError

__all__ = [
    "DEFAULT_BORDER_ID",
    "Border",
    "default_border",
    "default_border_path",
    "hrw_areas",
    "load_border",
    "parse_km_range",
]

DEFAULT_BORDER_ID = "PRK-CHN"
GEOD = Geod(ellps="WGS84")
# WGS84 radii of curvature are computed per segment for the local tangent-plane projection.
_A = 6378137.0
_E2 = 6.69437999014e-3
# Parts of a multi-part line closer than this are joined when merging into one path.
_JOIN_TOLERANCE_M = 50.0

Side = Literal["left", "right"]
FloatArray = npt.NDArray[np.float64]


def default_border_path() -> Path:
    """Return the path of the shipped default border file (Natural Earth 1:10m PRK borders)."""
    return Path(str(resources.files("bordewatch") / "data" / "borders" / "prk_chn.geojson"))


@dataclass(frozen=True, eq=False)
class Border:
    """An oriented border line with geodesic chainage.

    Parameters
    ----------
    line : shapely.LineString
        The line in lon/lat (EPSG:4326), oriented so that km 0 is its first vertex.
    name : str
        Short name used in tile ids and reports (e.g. ``"PRK-CHN"``).
    source : str
        Where the line came from (file path and feature, or the shipped default's provenance).
    left, right : str
        Names of what lies on each side of the line's direction (e.g. ``"CHN"``, ``"PRK"``).
    """

    line: shapely.LineString
    name: str
    source: str = ""
    left: str = "left"
    right: str = "right"
    _cum_km: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        coords = shapely.get_coordinates(self.line)
        if len(coords) < 2:
            raise BorderError(f"border {self.name!r} has fewer than two vertices")
        seg_m = GEOD.inv(coords[:-1, 0], coords[:-1, 1], coords[1:, 0], coords[1:, 1])[2]
        object.__setattr__(self, "_cum_km", np.concatenate([[0.0], np.cumsum(seg_m) / 1000.0]))

    # ------------------------------------------------------------------ basic properties
    @property
    def coords(self) -> FloatArray:
        """Vertices as an ``(n, 2)`` array of lon, lat."""
        return shapely.get_coordinates(self.line)

    @property
    def length_km(self) -> float:
        """Geodesic length on the WGS84 ellipsoid, km."""
        return float(self._cum_km[-1])

    @property
    def vertex_km(self) -> FloatArray:
        """Chainage of every vertex, km."""
        return self._cum_km

    def side_name(self, side: Side) -> str:
        """Return what lies on ``side`` of the line (e.g. the country code)."""
        return self.left if side == "left" else self.right

    # ------------------------------------------------------------------ chainage
    def point_at(self, km: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Return lon, lat of the border points at chainage ``km`` (clipped to the line).

        Examples
        --------
        >>> b = Border(shapely.LineString([(125.0, 40.0), (125.0, 41.0)]), name="t")
        >>> lon, lat = b.point_at([0.0])
        >>> float(lat[0])
        40.0
        """
        km_arr = np.clip(np.atleast_1d(np.asarray(km, dtype=np.float64)), 0.0, self.length_km)
        coords = self.coords
        idx = np.clip(np.searchsorted(self._cum_km, km_arr, side="right") - 1, 0, len(coords) - 2)
        az = GEOD.inv(coords[idx, 0], coords[idx, 1], coords[idx + 1, 0], coords[idx + 1, 1])[0]
        dist_m = (km_arr - self._cum_km[idx]) * 1000.0
        lon, lat, _ = GEOD.fwd(coords[idx, 0], coords[idx, 1], az, dist_m)
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)

    def km_of(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> FloatArray:
        """Return the chainage (km) of the border point nearest to each lon/lat point."""
        return self.locate(lon, lat)[0]

    def locate(
        self, lon: npt.ArrayLike, lat: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray, npt.NDArray[np.str_]]:
        """Locate points relative to the border.

        Parameters
        ----------
        lon, lat : array_like of float
            Points in EPSG:4326.

        Returns
        -------
        km : ndarray of float64
            Chainage of the nearest border point, km.
        offset_m : ndarray of float64
            Signed distance from the line, metres; positive on the left of the line's direction.
        side : ndarray of str
            ``"left"`` or ``"right"`` (``"left"`` for points on the line).

        Notes
        -----
        The nearest segment is found in an equirectangular plane, then each candidate segment
        (it and its neighbours) is measured in its own local tangent plane with the ellipsoid's
        radii of curvature, which is exact to well under 0.1 % within tens of km of the line.
        """
        lon_a = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        lat_a = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        n_seg = len(self._cum_km) - 1
        nearest = self._nearest_segments(lon_a, lat_a)
        best_km = np.zeros_like(lon_a)
        best_off = np.full(lon_a.shape, np.inf)
        best_seg = nearest.copy()
        for delta in (-1, 0, 1):
            seg = np.clip(nearest + delta, 0, n_seg - 1)
            km, off = self._project_on_segments(seg, lon_a, lat_a)
            better = np.abs(off) < np.abs(best_off) - 1e-9
            best_km = np.where(better, km, best_km)
            best_off = np.where(better, off, best_off)
            best_seg = np.where(better, seg, best_seg)
        km, offset = self._refine_on_geodesic(best_seg, best_km, lon_a, lat_a)
        side = np.where(offset >= 0, "left", "right")
        return np.clip(km, 0.0, self.length_km), offset, side

    def _refine_on_geodesic(
        self, seg: npt.NDArray[np.intp], km: FloatArray, lon: FloatArray, lat: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Move each foot point along its geodesic segment until the offset is perpendicular.

        The tangent-plane estimate is off by the geodesic's curvature in lon/lat (decimetres on
        km-long segments); three Newton steps on the ellipsoid make it exact to millimetres.
        """
        lo, hi = self._cum_km[seg], self._cum_km[seg + 1]
        c = self.coords
        seg_az = GEOD.inv(c[seg, 0], c[seg, 1], c[seg + 1, 0], c[seg + 1, 1])[0]
        for _ in range(3):
            dist_m = (km - lo) * 1000.0
            flon, flat, back_az = GEOD.fwd(c[seg, 0], c[seg, 1], seg_az, dist_m)
            az_here = np.asarray(back_az) + 180.0  # the geodesic's forward azimuth at the foot
            az_p, _, d = GEOD.inv(flon, flat, lon, lat)
            angle = np.radians(np.asarray(az_p) - az_here)
            km = np.clip(km + np.asarray(d) * np.cos(angle) / 1000.0, lo, hi)
        dist_m = (km - lo) * 1000.0
        flon, flat, back_az = GEOD.fwd(c[seg, 0], c[seg, 1], seg_az, dist_m)
        az_p, _, d = GEOD.inv(flon, flat, lon, lat)
        left = np.sin(np.radians(np.asarray(az_p) - (np.asarray(back_az) + 180.0))) < 0
        d = np.asarray(d, dtype=np.float64)
        return km, np.where(left | (d == 0), d, -d)

    @cached_property
    def _segment_tree(self) -> tuple[shapely.STRtree, float]:
        coords = self.coords
        scale = math.cos(math.radians(float(np.mean(coords[:, 1]))))
        xy = np.column_stack([coords[:, 0] * scale, coords[:, 1]])
        segments = shapely.linestrings(np.stack([xy[:-1], xy[1:]], axis=1))
        return shapely.STRtree(segments), scale

    def _nearest_segments(self, lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.intp]:
        tree, scale = self._segment_tree
        pts = shapely.points(lon * scale, lat)
        return np.asarray(tree.query_nearest(pts, all_matches=False)[1], dtype=np.intp)

    def _project_on_segments(
        self, seg: npt.NDArray[np.intp], lon: FloatArray, lat: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Project points onto segments ``seg`` in each segment's local tangent plane."""
        c = self.coords
        lon0, lat0 = c[seg, 0], c[seg, 1]
        phi = np.radians((lat0 + c[seg + 1, 1]) / 2.0)  # radii at mid-segment: second-order error
        w = np.sqrt(1.0 - _E2 * np.sin(phi) ** 2)
        r_north = _A * (1.0 - _E2) / w**3  # meridional radius of curvature
        r_east = _A / w * np.cos(phi)  # parallel radius
        ex = np.radians(c[seg + 1, 0] - lon0) * r_east
        ey = np.radians(c[seg + 1, 1] - lat0) * r_north
        px = np.radians(lon - lon0) * r_east
        py = np.radians(lat - lat0) * r_north
        seg_len = np.hypot(ex, ey)
        seg_len = np.where(seg_len > 0, seg_len, 1.0)
        t = np.clip((px * ex + py * ey) / seg_len**2, 0.0, 1.0)
        cross = ex * py - ey * px  # > 0: left of the direction of travel
        dist = np.hypot(px - ex * t, py - ey * t)  # to the nearest point of the segment
        offset = np.where(cross >= 0, dist, -dist)
        return self._cum_km[seg] + t * np.diff(self._cum_km)[seg], offset

    # ------------------------------------------------------------------ pieces of the line
    def substring(self, km_start: float, km_end: float) -> shapely.LineString:
        """Return the part of the line between two chainages, in lon/lat."""
        km_start, km_end = max(0.0, km_start), min(self.length_km, km_end)
        if km_end <= km_start:
            raise BorderError(f"empty km range {km_start:g}:{km_end:g} on border {self.name!r}")
        inner = (self._cum_km > km_start) & (self._cum_km < km_end)
        lon0, lat0 = self.point_at([km_start])
        lon1, lat1 = self.point_at([km_end])
        pts = np.vstack([[lon0[0], lat0[0]], self.coords[inner], [lon1[0], lat1[0]]])
        return shapely.LineString(pts)

    def segments(
        self, step_km: float = 1.0, km_range: tuple[float, float] | None = None
    ) -> gpd.GeoDataFrame:
        """Cut the line into consecutive pieces of ``step_km`` (the last may be shorter).

        Returns
        -------
        GeoDataFrame
            Columns ``km_start``, ``km_end`` and ``geometry`` (LineString, EPSG:4326); the rows
            are contiguous and cover ``km_range`` (default: the whole line).
        """
        if step_km <= 0:
            raise BorderError(f"segment step must be positive, got {step_km!r} km")
        start, end = km_range if km_range is not None else (0.0, self.length_km)
        end = min(end, self.length_km)
        n = max(1, math.ceil((end - start) / step_km - 1e-9))
        edges = np.minimum(start + step_km * np.arange(n + 1), end)
        edges[-1] = end
        geoms = [self.substring(a, b) for a, b in itertools.pairwise(edges)]
        return gpd.GeoDataFrame(
            {"km_start": edges[:-1], "km_end": edges[1:]}, geometry=geoms, crs="EPSG:4326"
        )

    def utm_crs(self, km_start: float = 0.0, km_end: float | None = None) -> pyproj.CRS:
        """Return the UTM zone CRS (WGS84) at the middle of a km range of the line."""
        km_end = self.length_km if km_end is None else km_end
        lon, lat = self.point_at([(km_start + km_end) / 2.0])
        zone = int((lon[0] + 180.0) // 6.0) % 60 + 1
        return pyproj.CRS.from_epsg((32600 if lat[0] >= 0 else 32700) + zone)

    def line_in(
        self, crs: pyproj.CRS | str, km_range: tuple[float, float] | None = None
    ) -> shapely.LineString:
        """Return the line (or a km range of it) transformed into ``crs``."""
        line = self.line if km_range is None else self.substring(*km_range)
        tf = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        return shapely.transform(line, lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1])))

    def to_geodataframe(self) -> gpd.GeoDataFrame:
        """The line as a one-row GeoDataFrame (for the ``border`` output layer)."""
        return gpd.GeoDataFrame(
            {
                "name": [self.name],
                "length_km": [round(self.length_km, 3)],
                "left": [self.left],
                "right": [self.right],
                "source": [self.source],
            },
            geometry=[self.line],
            crs="EPSG:4326",
        )


# ---------------------------------------------------------------------- loading
def default_border(border_id: str = DEFAULT_BORDER_ID) -> Border:
    """Return a shipped default border (``"PRK-CHN"`` or ``"PRK-RUS"``)."""
    return load_border(default_border_path(), border_id=border_id)


def load_border(path: str | Path | None = None, *, border_id: str | None = None) -> Border:
    """Load a border line from any OGR line file (GeoJSON, GPKG, Shapefile, FlatGeobuf, KML).

    Multi-part lines are merged into one ordered path (parts closer than 50 m are joined). The
    line is kept in the order it was drawn; km 0 is its first vertex.

    Parameters
    ----------
    path : path-like, optional
        The file; ``None`` loads the shipped North Korea–China line.
    border_id : str, optional
        Which feature to use when the file holds several: matched against a ``border_id``,
        ``id`` or ``name`` property, or a 0-based feature index.

    Raises
    ------
    BorderError
        The file is missing or unreadable, holds no line, points, polygons, several lines and no
        ``border_id``, parts that cannot be joined into one path, or lat/lon looking swapped.
    """
    if path is None:
        return load_border(default_border_path(), border_id=border_id or DEFAULT_BORDER_ID)
    path = Path(path)
    frame = _read_frame(path)
    row = _pick_feature(frame, path, border_id)
    line = _merge_to_path(row.geometry, path)
    props = {k: v for k, v in row.items() if k != "geometry"}
    name = str(props.get("border_id") or props.get("name") or border_id or path.stem)
    return Border(
        line=line,
        name=_safe_name(name),
        source=str(props.get("source") or path),
        left=str(props.get("left") or "left"),
        right=str(props.get("right") or "right"),
    )


def _safe_name(name: str) -> str:
    """Keep a border name usable in tile ids and file names."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name.strip())
    return cleaned[:40] or "border"


def _read_frame(path: Path) -> gpd.GeoDataFrame:
    if not path.exists():
        raise BorderError(f"{path}: border file not found")
    try:
        frame = gpd.read_file(path)
    except Exception as err:  # pyogrio raises several types for unreadable files
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BorderError(f"{path}: cannot read as a vector file ({reason})") from err
    frame = frame[~frame.geometry.isna() & ~frame.geometry.is_empty]
    if frame.empty:
        raise BorderError(f"{path}: no features with geometry; expected one border line")
    if frame.crs is None:
        frame = frame.set_crs("EPSG:4326")
    _check_lonlat(frame, path)
    return frame.to_crs("EPSG:4326") if not frame.crs.equals("EPSG:4326") else frame


def _check_lonlat(frame: gpd.GeoDataFrame, path: Path) -> None:
    if not frame.crs.is_geographic:
        return
    xy = shapely.get_coordinates(frame.geometry.values)
    if np.any(np.abs(xy[:, 1]) > 90.0) and np.all(np.abs(xy[:, 0]) <= 90.0):
        raise BorderError(
            f"{path}: latitudes beyond ±90° but longitudes within ±90°: the coordinates look like "
            "swapped lat/lon; write them as lon, lat (x, y) as GeoJSON requires"
        )
    if np.any(np.abs(xy[:, 1]) > 90.0) or np.any(np.abs(xy[:, 0]) > 360.0):
        raise BorderError(f"{path}: coordinates out of range for lon/lat; is the CRS right?")


def _pick_feature(frame: gpd.GeoDataFrame, path: Path, border_id: str | None) -> gpd.GeoSeries:
    kinds = set(frame.geom_type)
    if kinds <= {"Point", "MultiPoint"}:
        raise BorderError(f"{path}: holds points, not a line; draw the border as a LineString")
    if kinds <= {"Polygon", "MultiPolygon"}:
        raise BorderError(
            f"{path}: holds polygons, not a line; use the shared boundary of the two countries "
            "(in QGIS: Polygons to Lines, then keep the shared part)"
        )
    lines = frame[frame.geom_type.isin(["LineString", "MultiLineString"])]
    if lines.empty:
        raise BorderError(f"{path}: no LineString features (found {sorted(kinds)})")
    if border_id is not None:
        for column in ("border_id", "id", "name"):
            if column in lines.columns:
                hit = lines[lines[column].astype(str) == str(border_id)]
                if len(hit) == 1:
                    return hit.iloc[0]
        if str(border_id).isdigit() and int(border_id) < len(lines):
            return lines.iloc[int(border_id)]
        raise BorderError(f"{path}: no line with border id {border_id!r}; {_describe(lines)}")
    if len(lines) > 1:
        raise BorderError(
            f"{path}: holds {len(lines)} lines; choose one with --border-id ({_describe(lines)})"
        )
    return lines.iloc[0]


def _describe(lines: gpd.GeoDataFrame) -> str:
    for column in ("border_id", "id", "name"):
        if column in lines.columns:
            return "available: " + ", ".join(map(str, lines[column].tolist()))
    return f"available: indices 0..{len(lines) - 1}"


def _merge_to_path(geom: shapely.Geometry, path: Path) -> shapely.LineString:
    """Merge a (Multi)LineString into one path, joining parts whose ends nearly touch."""
    if geom.geom_type == "LineString":
        line = geom
    else:
        parts = [p for p in shapely.get_parts(geom) if not p.is_empty]
        line = _chain_parts(parts, path)
    coords = shapely.get_coordinates(line)
    keep = np.concatenate([[True], np.any(np.diff(coords, axis=0) != 0, axis=1)])
    coords = coords[keep]
    if len(coords) < 2:
        raise BorderError(f"{path}: the border line is degenerate (fewer than two distinct points)")
    return shapely.LineString(coords)


def _chain_parts(parts: list[shapely.LineString], path: Path) -> shapely.LineString:
    merged = shapely.line_merge(shapely.MultiLineString(parts))
    if merged.geom_type == "LineString":
        return merged
    remaining = list(shapely.get_parts(merged))
    chain = shapely.get_coordinates(remaining.pop(0))
    while remaining:
        best = None
        for i, part in enumerate(remaining):
            pc = shapely.get_coordinates(part)
            for flip_chain, flip_part in (
                (False, False),
                (False, True),
                (True, False),
                (True, True),
            ):
                a = chain[0] if flip_chain else chain[-1]
                b = pc[-1] if flip_part else pc[0]
                gap = GEOD.inv(a[0], a[1], b[0], b[1])[2]
                if best is None or gap < best[0]:
                    best = (gap, i, flip_chain, flip_part)
        assert best is not None
        gap, i, flip_chain, flip_part = best
        if gap > _JOIN_TOLERANCE_M:
            at_km = GEOD.geometry_length(shapely.LineString(chain)) / 1000.0
            raise BorderError(
                f"{path}: the line has {len(remaining) + 1} parts that do not join into one path; "
                f"gap of {gap:,.0f} m after {at_km:.1f} km; merge them or pick one with --border-id"
            )
        pc = shapely.get_coordinates(remaining.pop(i))
        chain = chain[::-1] if flip_chain else chain
        pc = pc[::-1] if flip_part else pc
        chain = np.vstack([chain, pc])
    return shapely.LineString(chain)


# ---------------------------------------------------------------------- km ranges and areas
def parse_km_range(text: str | None, border: Border) -> tuple[float, float]:
    """Parse ``"START:END"`` (either side may be empty) into a km range on ``border``.

    Examples
    --------
    >>> b = Border(shapely.LineString([(125.0, 40.0), (125.0, 41.0)]), name="t")
    >>> parse_km_range("10:20", b)
    (10.0, 20.0)
    """
    if not text:
        return 0.0, border.length_km
    try:
        left, right = text.split(":")
        start = float(left) if left.strip() else 0.0
        end = float(right) if right.strip() else border.length_km
    except ValueError as err:
        raise BorderError(f"--km {text!r}: expected START:END in km, e.g. 610:660") from err
    if not (math.isfinite(start) and math.isfinite(end)):
        raise BorderError(f"--km {text!r}: START and END must be finite numbers")
    if end <= start:
        raise BorderError(
            f"--km {text!r}: END must be greater than START (the range is reversed or empty)"
        )
    if start < 0 or start >= border.length_km:
        raise BorderError(
            f"--km {text!r}: start outside the border {border.name!r}, which runs 0 to "
            f"{border.length_km:.1f} km"
        )
    return start, min(end, border.length_km)


def hrw_areas() -> gpd.GeoDataFrame:
    """Return the six areas Human Rights Watch studied, as km ranges on the default line."""
    path = Path(str(resources.files("bordewatch") / "data" / "areas" / "hrw_2024.geojson"))
    data = json.loads(path.read_text())
    rows = [f["properties"] for f in data["features"]]
    border = default_border()
    geoms = [border.substring(r["km_start"], r["km_end"]) for r in rows]
    return gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4326")
