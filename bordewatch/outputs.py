"""Merge per-tile detections into the run's detections and write every output file.

Per-tile detections arrive in each tile's own CRS. :func:`merge_detections` keeps what lies in
each tile's *core* (cores of neighbouring tiles do not overlap), brings everything into one metric
CRS (the UTM zone of the middle of the run), joins line pieces that meet across tile edges, drops
duplicate points and returns the run's detections in EPSG:4326 with the DESIGN.md schema.

The writers produce the output contract: RFC 7946 GeoJSON with deterministic bytes
(:func:`write_geojson`), a GeoPackage 1.3 with QGIS styles embedded (:func:`write_gpkg`), CSV
(:func:`write_csv`) and the change-score Cloud-Optimised GeoTIFF (:func:`write_change_cog`, from
per-tile rasters written by workers with :func:`write_tile_raster`). Every file is written
atomically (temporary name, then rename).
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyogrio
import pyproj
import shapely

from bordewatch._typing import PathLikeStr
from bordewatch.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from bordewatch.border import GEOD, Border
from bordewatch.errors import TileError
from bordewatch.results import TileResult
from bordewatch.tiling import Tile

__all__ = [
    "DETECTION_COLUMNS",
    "STYLE_LAYERS",
    "empty_detections",
    "merge_detections",
    "replace_gpkg_layer",
    "styles_dir",
    "write_change_cog",
    "write_csv",
    "write_geojson",
    "write_gpkg",
    "write_styles",
    "write_tile_raster",
]

DETECTION_COLUMNS: tuple[str, ...] = (
    "id",
    "class",
    "status",
    "score",
    "km",
    "offset_m",
    "length_m",
    "tile",
    "method",
    "geometry",
)
STYLE_LAYERS: tuple[str, ...] = ("detections", "segments", "tiles", "border")
_FLOAT_COLUMNS = ("score", "km", "offset_m", "length_m")
_LINE_TYPES = ("LineString", "MultiLineString", "LinearRing")
_POINT_TYPES = ("Point", "MultiPoint")
# Joined lines: pieces whose outward directions differ from anti-parallel by more than this are
# not joined (a fence turning at a tile edge still joins; side-by-side ends never do).
_MAX_JOIN_ANGLE_DEG = 45.0
# Joined pieces may overlap backwards by at most this much (clipping across CRSs leaves mm).
_MAX_JOIN_OVERLAP_M = 1.0
# Lines shorter than this after merging are slivers of clipping and are dropped.
_MIN_LINE_M = 1.0
# Fixed timestamp for GeoPackage metadata, so identical runs give identical files.
FIXED_TIMESTAMP = "2000-01-01T00:00:00.000Z"
# change.tif: never finer than this, and never more pixels than this (coarser if needed).
_CHANGE_MIN_RES_M = 2.0
_CHANGE_MAX_PIXELS = 150_000_000


# ====================================================================== merge
@dataclass(frozen=True, slots=True, eq=False)
class _Piece:
    """One line piece or point in the run's metric CRS, with its attributes."""

    cls: str
    status: str
    score: float
    tile: str
    method: str
    coords: npt.NDArray[np.float64]  # (n, 2); one row for points

    @property
    def key(self) -> tuple[Any, ...]:
        rounded = np.round(self.coords, 3)
        first, last = tuple(rounded[0]), tuple(rounded[-1])
        return (self.cls, self.status, first, last, len(rounded), rounded.tobytes(), self.tile)

    @property
    def length(self) -> float:
        return (
            float(np.hypot(*np.diff(self.coords, axis=0).T).sum()) if len(self.coords) > 1 else 0.0
        )


def empty_detections() -> gpd.GeoDataFrame:
    """Return a detections GeoDataFrame with no rows and the output schema (EPSG:4326)."""
    data: dict[str, pd.Series] = {}
    for column in DETECTION_COLUMNS[:-1]:
        dtype = "float64" if column in _FLOAT_COLUMNS else "object"
        data[column] = pd.Series([], dtype=dtype)
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")


def merge_detections(
    results: Sequence[TileResult],
    tiles: Sequence[Tile],
    border: Border,
    *,
    join_tolerance_m: float = 5.0,
    min_line_m: float = 10.0,
) -> gpd.GeoDataFrame:
    """Merge per-tile detections into the run's detections.

    Parameters
    ----------
    results : sequence of TileResult
        Per-tile results (any order); detections in each tile's CRS. Failed tiles add nothing.
    tiles : sequence of Tile
        The run's tiles; each result's detections are clipped to its tile's ``core``.
    border : Border
        For chainage (``km``), signed offset and the run's metric CRS.
    join_tolerance_m : float
        Line pieces of the same class and status whose ends lie within this distance and align
        are joined into one line; points of the same class and status closer than this are
        duplicates (the highest score is kept).
    min_line_m : float
        Line pieces still shorter than this after joining are dropped: they are the stubs a
        line leaves when it pokes a few metres into a neighbour's core without meeting the
        neighbour's own piece, not objects.

    Returns
    -------
    GeoDataFrame
        EPSG:4326, columns :data:`DETECTION_COLUMNS`, rows sorted by ``km``, ``class``,
        ``status``, ``offset_m``; ``id`` is ``f"{class}-{km:09.3f}-{n}"``, stable across runs and
        independent of the order of ``results``. ``length_m`` is geodesic (NaN for points).

    Raises
    ------
    TileError
        A result names a tile that is not in ``tiles``.
    """
    tile_by_id = {t.id: t for t in tiles}
    if not tile_by_id:
        return empty_detections()
    km_lo = min(t.km_start for t in tiles)
    km_hi = max(t.km_end for t in tiles)
    metric = border.utm_crs(km_lo, km_hi).to_string()
    points: list[_Piece] = []
    lines: list[_Piece] = []
    for result in sorted(results, key=lambda r: r.tile_id):
        if result.tile_id not in tile_by_id:
            raise TileError(f"tile result {result.tile_id!r} has no tile in this run's plan")
        p, ln = _clip_result(result, tile_by_id[result.tile_id], metric)
        points.extend(p)
        lines.extend(ln)
    joined = [p for p in _join_lines(lines, join_tolerance_m) if _length(p.coords) >= min_line_m]
    return _to_frame(_dedupe_points(points, join_tolerance_m) + joined, border, metric)


def _length(coords: npt.NDArray[np.float64]) -> float:
    """Planar length of a polyline given as an ``(n, 2)`` array, metres."""
    return float(np.hypot(*np.diff(coords, axis=0).T).sum()) if len(coords) > 1 else 0.0


def _clip_result(result: TileResult, tile: Tile, metric: str) -> tuple[list[_Piece], list[_Piece]]:
    """Clip one tile's detections to its core and transform them into the metric CRS."""
    core = tile.core
    shapely.prepare(core)
    points: list[_Piece] = []
    lines: list[_Piece] = []
    for det in result.detections:
        geom = det.geometry
        if geom is None or geom.is_empty:
            continue
        kind = geom.geom_type
        if kind in _POINT_TYPES:
            parts = [p for p in shapely.get_parts(geom) if core.covers(p)]
            target = points
        elif kind in _LINE_TYPES:
            clipped = shapely.intersection(geom, core)
            parts = [p for p in shapely.get_parts(clipped) if p.geom_type in _LINE_TYPES]
            parts = [p for p in _merge_parts(parts) if p.length > 0]
            target = lines
        else:
            continue  # polygons etc. are not in the detection contract
        for part in parts:
            xy = _transform(result.crs or tile.crs, metric, shapely.get_coordinates(part))
            target.append(_Piece(det.cls, det.status, float(det.score), tile.id, result.method, xy))
    return points, lines


def _merge_parts(parts: list[shapely.Geometry]) -> list[shapely.LineString]:
    """Merge clipped parts that touch end to end (a clip can split a line at a vertex)."""
    if len(parts) < 2:
        return parts
    merged = shapely.line_merge(shapely.MultiLineString(parts))
    return list(shapely.get_parts(merged))


@lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


@lru_cache(maxsize=64)
def _same_crs(src: str, dst: str) -> bool:
    return src == dst or pyproj.CRS.from_user_input(src) == pyproj.CRS.from_user_input(dst)


def _transform(src: str, dst: str, xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    if _same_crs(src, dst):
        return np.asarray(xy, dtype=np.float64).copy()
    x, y = _transformer(src, dst).transform(xy[:, 0], xy[:, 1])
    return np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])


def _dedupe_points(points: list[_Piece], tol_m: float) -> list[_Piece]:
    """Keep one point per cluster of same class/status within ``tol_m`` (highest score first)."""
    if not points:
        return []
    order = sorted(points, key=lambda p: (-p.score, p.key))
    xy = np.vstack([p.coords[0] for p in order])
    tree = shapely.STRtree(shapely.points(xy))
    a, b = tree.query(shapely.points(xy), predicate="dwithin", distance=tol_m)
    neighbours: dict[int, list[int]] = {}
    for i, j in zip(a.tolist(), b.tolist()):
        if i != j:
            neighbours.setdefault(i, []).append(j)
    dropped = np.zeros(len(order), dtype=bool)
    kept: list[_Piece] = []
    for i, piece in enumerate(order):
        if dropped[i]:
            continue
        kept.append(piece)
        for j in neighbours.get(i, []):
            other = order[j]
            if other.cls == piece.cls and other.status == piece.status:
                dropped[j] = True
    return kept


def _outward(coords: npt.NDArray[np.float64], at_start: bool) -> npt.NDArray[np.float64]:
    """Unit vector pointing out of the line at one end."""
    seq = coords if at_start else coords[::-1]
    end = seq[0]
    for other in seq[1:]:
        d = end - other
        n = math.hypot(d[0], d[1])
        if n > 1e-9:
            return d / n
    return np.zeros(2)


def _join_lines(pieces: list[_Piece], tol_m: float) -> list[_Piece]:
    """Join line pieces of the same class and status whose ends meet and align."""
    out: list[_Piece] = []
    groups: dict[tuple[str, str], list[_Piece]] = {}
    for piece in pieces:
        groups.setdefault((piece.cls, piece.status), []).append(piece)
    for key in sorted(groups):
        group = sorted(groups[key], key=lambda p: p.key)
        for chain in _chains(group, tol_m):
            joined = _concat(group, chain)
            if joined.length >= _MIN_LINE_M:
                out.append(joined)
    return out


def _link_ends(group: list[_Piece], tol_m: float) -> npt.NDArray[np.intp]:
    """Pair up piece ends (index ``2 i`` = start of piece i, ``2 i + 1`` = its end)."""
    n = len(group)
    ends = np.array([p.coords[k] for p in group for k in (0, -1)], dtype=np.float64)
    dirs = np.array([_outward(p.coords, s) for p in group for s in (True, False)])
    link = np.full(2 * n, -1, dtype=np.intp)
    if n < 2:
        return link
    geoms = shapely.points(ends)
    a, b = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=tol_m)
    keep = (a < b) & (a // 2 != b // 2)
    a, b = a[keep], b[keep]
    gap = ends[b] - ends[a]
    dist = np.hypot(gap[:, 0], gap[:, 1])
    anti = -(dirs[a] * dirs[b]).sum(axis=1) >= math.cos(math.radians(_MAX_JOIN_ANGLE_DEG))
    ahead_a = (dirs[a] * gap).sum(axis=1) >= -_MAX_JOIN_OVERLAP_M
    ahead_b = -(dirs[b] * gap).sum(axis=1) >= -_MAX_JOIN_OVERLAP_M
    ok = anti & ahead_a & ahead_b
    a, b, dist = a[ok], b[ok], dist[ok]
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for k in np.lexsort((b, a, np.round(dist, 6))):
        ea, eb = int(a[k]), int(b[k])
        ra, rb = find(ea // 2), find(eb // 2)
        if link[ea] < 0 and link[eb] < 0 and ra != rb:
            link[ea], link[eb] = eb, ea
            parent[ra] = rb
    return link


def _chains(group: list[_Piece], tol_m: float) -> list[list[tuple[int, bool]]]:
    """Walk linked pieces into chains of ``(piece index, reversed)``."""
    link = _link_ends(group, tol_m)
    seen = np.zeros(len(group), dtype=bool)
    chains: list[list[tuple[int, bool]]] = []
    for i in range(len(group)):
        if seen[i] or (link[2 * i] >= 0 and link[2 * i + 1] >= 0):
            continue
        entry = 2 * i if link[2 * i] < 0 else 2 * i + 1  # a free end
        chain: list[tuple[int, bool]] = []
        while True:
            piece, rev = entry // 2, entry % 2 == 1
            seen[piece] = True
            chain.append((piece, rev))
            exit_end = 2 * piece + (0 if rev else 1)
            nxt = int(link[exit_end])
            if nxt < 0:
                break
            entry = nxt
        chains.append(chain)
    return chains


def _concat(group: list[_Piece], chain: list[tuple[int, bool]]) -> _Piece:
    """Concatenate a chain of pieces into one piece (length-weighted score)."""
    coords = np.vstack([group[i].coords[::-1] if rev else group[i].coords for i, rev in chain])
    step = np.hypot(*np.diff(coords, axis=0).T)
    coords = coords[np.concatenate([[True], step > 1e-3])]
    if len(chain) > 1 and len(coords) > 2:
        coords = shapely.get_coordinates(shapely.simplify(shapely.LineString(coords), 0.01))
    parts = [group[i] for i, _ in chain]
    weights = np.array([max(p.length, 1e-9) for p in parts])
    score = float(np.average([p.score for p in parts], weights=weights))
    longest = max(parts, key=lambda p: (p.length, p.tile))
    methods = "+".join(sorted({p.method for p in parts}))
    return _Piece(parts[0].cls, parts[0].status, score, longest.tile, methods, coords)


def _to_frame(pieces: list[_Piece], border: Border, metric: str) -> gpd.GeoDataFrame:
    """Attributes (km, offset, length, id), EPSG:4326 geometry, deterministic row order."""
    if not pieces:
        return empty_detections()
    geoms = []
    anchors = np.empty((len(pieces), 2))
    for k, piece in enumerate(pieces):
        lonlat = _transform(metric, "EPSG:4326", piece.coords)
        if len(piece.coords) == 1:
            geoms.append(shapely.Point(lonlat[0]))
            anchors[k] = lonlat[0]
        else:
            geoms.append(shapely.LineString(lonlat))
            mid = shapely.LineString(piece.coords).interpolate(0.5, normalized=True)
            anchors[k] = _transform(metric, "EPSG:4326", shapely.get_coordinates(mid))[0]
    km, offset, _ = border.locate(anchors[:, 0], anchors[:, 1])
    length = [GEOD.geometry_length(g) if g.geom_type != "Point" else math.nan for g in geoms]
    rows = [
        {
            "class": p.cls,
            "status": p.status,
            "score": float(min(max(p.score, 0.0), 1.0)),
            "km": float(km[k]),
            "offset_m": float(offset[k]),
            "length_m": float(length[k]),
            "tile": p.tile,
            "method": p.method,
            "geometry": geoms[k],
        }
        for k, p in enumerate(pieces)
    ]
    rows.sort(
        key=lambda r: (
            r["km"],
            r["class"],
            r["status"],
            r["offset_m"],
            shapely.to_wkb(r["geometry"], hex=True),
        )
    )
    counts: dict[str, int] = {}
    for row in rows:
        prefix = f"{row['class']}-{row['km']:09.3f}"
        row["id"] = f"{prefix}-{counts.get(prefix, 0)}"
        counts[prefix] = counts.get(prefix, 0) + 1
    frame = pd.DataFrame(rows, columns=list(DETECTION_COLUMNS))
    return gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")


# ====================================================================== GeoJSON
def write_geojson(gdf: gpd.GeoDataFrame, path: PathLikeStr) -> None:
    """Write an RFC 7946 FeatureCollection (EPSG:4326, 7 decimals) with deterministic bytes.

    Features are sorted by ``id`` when that column exists (else kept in row order); properties
    keep column order; floats are rounded to 6 decimals, NaN becomes ``null``; polygons follow
    the right-hand rule; there is no ``crs`` member. One feature per line.
    """
    frame = gdf
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    if "id" in frame.columns and len(frame):
        frame = frame.iloc[np.argsort(frame["id"].astype(str).to_numpy(), kind="stable")]
    geom_name = frame.geometry.name
    columns = [c for c in frame.columns if c != geom_name]
    records = frame[columns].to_dict("records") if columns else [{}] * len(frame)
    lines = []
    for record, geom in zip(records, frame.geometry.array):
        feature = {
            "type": "Feature",
            "properties": {str(k): _json_value(v) for k, v in record.items()},
            "geometry": _geometry_json(geom),
        }
        lines.append(
            json.dumps(feature, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        )
    body = ",\n".join(lines)
    text = '{"type":"FeatureCollection","features":[\n' + body + ("\n" if lines else "") + "]}\n"
    atomic_write_text(path, text)


def _json_value(value: Any) -> Any:
    """A property value as a JSON-safe, deterministic Python value."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if not math.isfinite(v) else round(v, 6) + 0.0
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is pd.NaT or (not isinstance(value, str) and pd.isna(value) is True):
        return None
    return str(value)


def _round_xy(xy: npt.NDArray[np.float64]) -> list[list[float]]:
    """Coordinates rounded to 7 decimals, consecutive duplicates dropped (min. 2 kept)."""
    r = np.round(np.asarray(xy, dtype=np.float64)[:, :2], 7) + 0.0
    if len(r) > 2:
        keep = np.concatenate([[True], np.any(np.diff(r, axis=0) != 0, axis=1)])
        if keep.sum() >= 2:
            r = r[keep]
    return r.tolist()


def _geometry_json(geom: shapely.Geometry | None) -> dict[str, Any] | None:
    if geom is None or geom.is_empty:
        return None
    kind = geom.geom_type
    if kind == "Point":
        return {"type": "Point", "coordinates": _round_xy(shapely.get_coordinates(geom))[0]}
    if kind in ("LineString", "LinearRing"):
        return {"type": "LineString", "coordinates": _round_xy(shapely.get_coordinates(geom))}
    if kind == "Polygon":
        return {"type": "Polygon", "coordinates": _polygon_rings(geom)}
    if kind == "MultiPoint":
        coords = [_round_xy(shapely.get_coordinates(p))[0] for p in geom.geoms]
        return {"type": "MultiPoint", "coordinates": coords}
    if kind == "MultiLineString":
        lines = [_round_xy(shapely.get_coordinates(p)) for p in geom.geoms]
        return {"type": "MultiLineString", "coordinates": lines}
    if kind == "MultiPolygon":
        return {"type": "MultiPolygon", "coordinates": [_polygon_rings(p) for p in geom.geoms]}
    parts = [g for g in (_geometry_json(p) for p in geom.geoms) if g is not None]
    return {"type": "GeometryCollection", "geometries": parts}


def _polygon_rings(poly: shapely.Polygon) -> list[list[list[float]]]:
    """Rings of a polygon, exterior counter-clockwise and holes clockwise (RFC 7946 §3.1.6)."""
    poly = shapely.orient_polygons(poly, exterior_cw=False)
    rings = [poly.exterior, *poly.interiors]
    return [_round_xy(shapely.get_coordinates(r)) for r in rings]


# ====================================================================== CSV
def write_csv(df: pd.DataFrame, path: PathLikeStr) -> None:
    """Write a table as CSV (no index, ``\\n`` line ends, floats ``repr`` of 6-decimal rounding).

    A geometry column is left out. NaN and None are written as empty fields.
    """
    frame = pd.DataFrame(df)
    if isinstance(df, gpd.GeoDataFrame):
        frame = frame.drop(columns=[df.geometry.name])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([str(c) for c in frame.columns])
    for row in frame.itertuples(index=False, name=None):
        writer.writerow([_csv_value(v) for v in row])
    atomic_write_text(path, buf.getvalue())


def _csv_value(value: Any) -> str:
    v = _json_value(value)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


# ====================================================================== styles + GPKG
def styles_dir() -> Path:
    """Folder of the shipped QGIS ``.qml`` styles (one per output layer)."""
    return Path(str(resources.files("bordewatch") / "styles"))


def write_styles(directory: PathLikeStr) -> list[Path]:
    """Copy the QGIS styles into ``DIRECTORY/styles/`` (atomically); return the written paths.

    A ``directory`` that is itself named ``styles`` is written into directly (never
    ``styles/styles``).
    """
    target = Path(directory)
    target = target if target.name == "styles" else target / "styles"
    written = []
    for src in sorted(styles_dir().glob("*.qml")):
        atomic_write_bytes(target / src.name, src.read_bytes())
        written.append(target / src.name)
    return written


def write_gpkg(
    path: PathLikeStr,
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    crs: pyproj.CRS | str,
) -> None:
    """Write layers into a GeoPackage 1.3 in the metric ``crs``, with QGIS styles embedded.

    Parameters
    ----------
    path : path-like
        The ``.gpkg`` file (replaced atomically).
    layers : mapping of str to GeoDataFrame
        Layer name to frame, written in this order (``detections``, ``segments``, ``tiles``,
        ``border``); frames without a CRS are taken as EPSG:4326.
    crs : pyproj.CRS or str
        Every layer is reprojected into it (the run's metric CRS).

    Notes
    -----
    A layer whose name has a shipped style (``styles/<name>.qml``) gets a default style row in a
    ``layer_styles`` table with the schema QGIS uses, so QGIS applies it when the layer is opened.
    Timestamps are fixed (:data:`FIXED_TIMESTAMP`) so identical inputs give identical tables.
    """
    crs = pyproj.CRS.from_user_input(crs)
    with atomic_path(path) as tmp, _fixed_gdal_date():
        for k, (name, gdf) in enumerate(layers.items()):
            _write_layer(tmp, name, gdf, crs, first=k == 0)
        _embed_styles(tmp, [name for name in layers])


def replace_gpkg_layer(
    path: PathLikeStr, name: str, gdf: gpd.GeoDataFrame, *, crs: pyproj.CRS | str
) -> None:
    """Rewrite one layer of an existing GeoPackage; every other layer and style stays as it is.

    ``bordewatch report`` recomputes the per-km ``segments`` after a user edited the
    ``detections`` layer in QGIS: the GPKG must show the same figures as ``coverage.csv``
    without losing that edit. The file is copied, the layer replaced in the copy, and the copy
    renamed over the original (an interrupted rewrite leaves the old file whole).

    Parameters
    ----------
    path : path-like
        An existing ``.gpkg`` (as written by :func:`write_gpkg`).
    name : str
        Layer to replace (created if absent).
    gdf : GeoDataFrame
        Its new rows; reprojected into ``crs`` (taken as EPSG:4326 without a CRS).
    crs : pyproj.CRS or str
        The GeoPackage's metric CRS.
    """
    crs = pyproj.CRS.from_user_input(crs)
    with atomic_path(path) as tmp, _fixed_gdal_date():
        shutil.copyfile(path, tmp)
        _write_layer(tmp, name, gdf, crs, first=False)
        _embed_styles(tmp, [name])  # a layer that has its style keeps it


@contextmanager
def _fixed_gdal_date() -> Iterator[None]:
    """GDAL's "current date" pinned while GeoPackage tables are written (identical files)."""
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_TIMESTAMP})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


def _write_layer(
    path: Path, name: str, gdf: gpd.GeoDataFrame, crs: pyproj.CRS, *, first: bool
) -> None:
    """Write (or overwrite) one layer of a GeoPackage in ``crs``."""
    frame, geometry_type = _prepare_layer(gdf, crs)
    pyogrio.write_dataframe(
        frame,
        path,
        layer=name,
        driver="GPKG",
        geometry_type=geometry_type,
        promote_to_multi=geometry_type.startswith("Multi"),
        dataset_options={"VERSION": "1.3"} if first else None,
    )


def _prepare_layer(gdf: gpd.GeoDataFrame, crs: pyproj.CRS) -> tuple[gpd.GeoDataFrame, str]:
    """Reproject a layer and choose its GeoPackage geometry type."""
    frame = gdf if gdf.crs is not None else gdf.set_crs("EPSG:4326")
    frame = frame.to_crs(crs)
    kinds = set(frame.geometry.dropna().geom_type)
    if len(kinds) == 1:
        geometry_type = kinds.pop()
    elif kinds and kinds <= {"LineString", "MultiLineString"}:
        geometry_type = "MultiLineString"
    elif kinds and kinds <= {"Polygon", "MultiPolygon"}:
        geometry_type = "MultiPolygon"
    elif kinds and kinds <= {"Point", "MultiPoint"}:
        geometry_type = "MultiPoint"
    else:
        geometry_type = "Unknown"
    return frame, geometry_type


_LAYER_STYLES_SQL = """
CREATE TABLE IF NOT EXISTS layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256),
  f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT,
  useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
  update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
)
"""


def _embed_styles(gpkg: Path, names: list[str]) -> None:
    """Add QGIS's ``layer_styles`` table with one default style per styled layer.

    Layers that already have a style row keep it (no duplicate default styles).
    """
    styles = {p.stem: p for p in styles_dir().glob("*.qml")}
    con = sqlite3.connect(gpkg)
    try:
        geom_cols = dict(con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
        con.execute(_LAYER_STYLES_SQL)
        styled = {r[0] for r in con.execute("SELECT f_table_name FROM layer_styles")}
        for name in names:
            if name not in styles or name not in geom_cols or name in styled:
                continue
            con.execute(
                "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, "
                "owner, ui, update_time) VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', '', ?)",
                (
                    name,
                    geom_cols[name],
                    name,
                    styles[name].read_text(encoding="utf-8"),
                    f"bordewatch default style for {name}",
                    FIXED_TIMESTAMP,
                ),
            )
        con.execute(
            "INSERT OR REPLACE INTO gpkg_contents (table_name, data_type, identifier, "
            "description, last_change) VALUES ('layer_styles', 'attributes', 'layer_styles', "
            "'', ?)",
            (FIXED_TIMESTAMP,),
        )
        has_ogr = con.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='gpkg_ogr_contents'"
        ).fetchone()
        if has_ogr:
            count = con.execute("SELECT count(*) FROM layer_styles").fetchone()[0]
            con.execute(
                "INSERT OR REPLACE INTO gpkg_ogr_contents (table_name, feature_count) "
                "VALUES ('layer_styles', ?)",
                (count,),
            )
        con.commit()
    finally:
        con.close()


# ====================================================================== rasters
def write_tile_raster(
    array: npt.NDArray[np.floating],
    tile: Tile,
    path: PathLikeStr,
    *,
    min_resolution_m: float = _CHANGE_MIN_RES_M,
) -> Path:
    """Write one tile's change score (float32, ``(row, col)`` on the tile grid) as a GeoTIFF.

    The array is block-averaged (NaN-aware) by an integer factor so its pixels are no finer than
    ``min_resolution_m`` (``0`` keeps the tile's resolution): the run's ``change.tif`` is made at
    that resolution anyway, and the cache stays small. ZSTD level 1, floating-point predictor,
    NaN nodata, the (possibly rotated) tile grid; written atomically.
    """
    import rasterio
    from affine import Affine

    data = np.asarray(array, dtype=np.float32)
    if data.shape != tile.shape:
        raise TileError(f"tile {tile.id}: change array shape {data.shape} != grid {tile.shape}")
    factor = max(1, int(min_resolution_m / tile.gsd_m + 1e-6)) if min_resolution_m > 0 else 1
    data = _block_mean(data, factor)
    transform = tile.affine @ Affine.scale(factor)
    profile = {
        "driver": "GTiff",
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": "float32",
        "crs": tile.crs,
        "transform": transform,
        "nodata": float("nan"),
        "compress": "ZSTD",
        "zstd_level": 1,
        "predictor": 3,
        "tiled": data.shape[0] >= 256 and data.shape[1] >= 256,
    }
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data, 1)
    return Path(path)


def _block_mean(data: npt.NDArray[np.float32], factor: int) -> npt.NDArray[np.float32]:
    """NaN-aware mean over ``factor`` × ``factor`` blocks (edges padded with NaN)."""
    if factor == 1:
        return data
    rows, cols = -(-data.shape[0] // factor), -(-data.shape[1] // factor)
    padded = np.full((rows * factor, cols * factor), np.nan, dtype=np.float32)
    padded[: data.shape[0], : data.shape[1]] = data
    blocks = padded.reshape(rows, factor, cols, factor)
    valid = np.isfinite(blocks)
    total = np.where(valid, blocks, 0.0).sum(axis=(1, 3), dtype=np.float64)
    count = valid.sum(axis=(1, 3))
    out = np.full((rows, cols), np.nan, dtype=np.float32)
    np.divide(total, count, out=out, where=count > 0, casting="unsafe")
    return out


def write_change_cog(
    parts: Sequence[tuple[PathLikeStr, Tile] | PathLikeStr],
    path: PathLikeStr,
    *,
    crs: pyproj.CRS | str,
    gsd_m: float,
) -> Path | None:
    """Mosaic per-tile change rasters into one north-up float32 0–1 COG in ``crs``.

    Parameters
    ----------
    parts : sequence of (path, Tile), or of paths
        Rasters written by :func:`write_tile_raster`; with a Tile only its core is used (the
        cores do not overlap); a bare path contributes its whole footprint (later parts win
        where footprints overlap), so pass tiles where you have them.
    path : path-like
        The output ``change.tif`` (replaced atomically).
    crs : pyproj.CRS or str
        The run's metric CRS.
    gsd_m : float
        The run's pixel size; the COG uses ``max(gsd_m, 2 m)`` (coarser if the run's extent
        would need more than 150 Mpx).

    Returns
    -------
    Path or None
        The written file, or None when there were no parts (nothing written).
    """
    if not parts:
        return None
    import rasterio.shutil

    crs = pyproj.CRS.from_user_input(crs)
    pairs = [(Path(p[0]), p[1]) if isinstance(p, tuple) else (Path(p), None) for p in parts]
    cores = [_footprint(src, tile, crs) for src, tile in pairs]
    minx, miny, maxx, maxy = shapely.total_bounds(cores)
    res = max(gsd_m, _CHANGE_MIN_RES_M)
    res = max(res, math.sqrt((maxx - minx) * (maxy - miny) / _CHANGE_MAX_PIXELS))
    x0, y0 = math.floor(minx / res) * res, math.ceil(maxy / res) * res
    width = max(1, math.ceil((maxx - x0) / res))
    height = max(1, math.ceil((y0 - miny) / res))
    target = Path(path)
    with tempfile.TemporaryDirectory(prefix=".tmp-change-", dir=target.parent) as work:
        sources = []
        for k, ((src, _), core) in enumerate(zip(pairs, cores)):
            piece = _warp_core(src, core, crs, (x0, y0, res, width, height))
            if piece is not None:
                sources.append((Path(work) / f"t{k:05d}.tif", *piece))
                _write_plain(*sources[-1], crs, (x0, y0, res, width, height))
        vrt = Path(work) / "mosaic.vrt"
        vrt.write_text(_vrt_xml(sources, crs, (x0, y0, res, width, height)), encoding="utf-8")
        with atomic_path(target) as tmp:
            rasterio.shutil.copy(
                vrt,
                tmp,
                driver="COG",
                COMPRESS="ZSTD",
                LEVEL="1",
                PREDICTOR="YES",
                BLOCKSIZE="256",
                RESAMPLING="AVERAGE",
                OVERVIEW_RESAMPLING="AVERAGE",
                SPARSE_OK="TRUE",
                NUM_THREADS="1",
            )
    return target


def _footprint(src: Path, tile: Tile | None, crs: pyproj.CRS) -> shapely.Geometry:
    """The part of the output a tile raster fills: its tile's core, else its whole grid."""
    dst = crs.to_string()
    if tile is not None:
        return shapely.transform(tile.core, lambda xy: _transform(tile.crs, dst, xy))
    import rasterio

    with rasterio.open(src) as ds:
        corners = np.array([[0, 0], [ds.width, 0], [ds.width, ds.height], [0, ds.height]])
        xy = np.array([ds.transform @ (c, r) for c, r in corners], dtype=np.float64)
        src_crs = ds.crs.to_string()
    return shapely.Polygon(_transform(src_crs, dst, xy))


def _warp_core(
    src_path: Path,
    core: shapely.Geometry,
    crs: pyproj.CRS,
    grid: tuple[float, float, float, int, int],
) -> tuple[npt.NDArray[np.float32], tuple[int, int]] | None:
    """Reproject one tile raster onto its window of the output grid, NaN outside its core."""
    import rasterio
    from affine import Affine
    from rasterio.features import geometry_mask
    from rasterio.warp import Resampling, reproject

    x0, y0, res, width, height = grid
    minx, miny, maxx, maxy = core.bounds
    col0 = max(0, math.floor((minx - x0) / res))
    row0 = max(0, math.floor((y0 - maxy) / res))
    col1 = min(width, math.ceil((maxx - x0) / res))
    row1 = min(height, math.ceil((y0 - miny) / res))
    if col1 <= col0 or row1 <= row0:
        return None
    transform = Affine(res, 0.0, x0 + col0 * res, 0.0, -res, y0 - row0 * res)
    out = np.full((row1 - row0, col1 - col0), np.nan, dtype=np.float32)
    with rasterio.open(src_path) as src:
        reproject(
            source=src.read(1, out_dtype="float32"),
            destination=out,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=np.nan,
            dst_transform=transform,
            dst_crs=crs,
            dst_nodata=np.nan,
            resampling=Resampling.average,
        )
    outside = geometry_mask([core], out_shape=out.shape, transform=transform)
    out[outside] = np.nan
    np.clip(out, 0.0, 1.0, out=out)
    return out, (row0, col0)


def _write_plain(
    path: Path,
    data: npt.NDArray[np.float32],
    offset: tuple[int, int],
    crs: pyproj.CRS,
    grid: tuple[float, float, float, int, int],
) -> None:
    """Write one mosaic piece (placed on the output grid at ``offset`` = (row, col))."""
    import rasterio
    from affine import Affine

    x0, y0, res = grid[:3]
    transform = Affine(res, 0.0, x0 + offset[1] * res, 0.0, -res, y0 - offset[0] * res)
    profile = {"driver": "GTiff", "width": data.shape[1], "height": data.shape[0], "count": 1}
    profile |= {"dtype": "float32", "nodata": float("nan"), "crs": crs, "transform": transform}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def _vrt_xml(
    sources: list[tuple[Path, npt.NDArray[np.float32], tuple[int, int]]],
    crs: pyproj.CRS,
    grid: tuple[float, float, float, int, int],
) -> str:
    """A VRT mosaic of the per-tile pieces (NaN pixels of a piece are transparent)."""
    x0, y0, res, width, height = grid
    out = [
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
        f"  <SRS>{escape(crs.to_wkt())}</SRS>",
        f"  <GeoTransform>{x0!r}, {res!r}, 0.0, {y0!r}, 0.0, {-res!r}</GeoTransform>",
        '  <VRTRasterBand dataType="Float32" band="1">',
        "    <NoDataValue>nan</NoDataValue>",
    ]
    for file, data, (row0, col0) in sources:
        h, w = data.shape
        out += [
            "    <ComplexSource>",
            f'      <SourceFilename relativeToVRT="1">{escape(file.name)}</SourceFilename>',
            "      <SourceBand>1</SourceBand>",
            f'      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>',
            f'      <DstRect xOff="{col0}" yOff="{row0}" xSize="{w}" ySize="{h}"/>',
            "      <NODATA>nan</NODATA>",
            "    </ComplexSource>",
        ]
    out += ["  </VRTRasterBand>", "</VRTDataset>", ""]
    return "\n".join(out)
