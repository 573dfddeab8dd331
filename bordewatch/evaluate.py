"""Score detections against ground truth: points, lines and per-kilometre errors.

Points (watchtowers) are matched one to one within a tolerance (Hungarian assignment on
distance); lines (fences, patrol lanes) are scored by length within a buffer, in a metric CRS:
precision is the predicted length near truth over the predicted length, recall the truth length
near a prediction over the truth length. Truth marked ``observable == False`` (under cloud,
outside both footprints) is not counted, and predictions that only match such truth are ignored
rather than counted as false.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
import shapely
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from bordewatch._typing import INFRA_CLASSES, STATUSES, PathLikeStr
from bordewatch.atomic import atomic_write_text
from bordewatch.border import Border
from bordewatch.errors import RunFolderError, TruthError

__all__ = [
    "ClassScore",
    "Evaluation",
    "KmError",
    "evaluate",
    "evaluate_run",
    "format_table",
    "read_truth",
]

LINE_CLASSES = ("fence", "patrol_lane")
POINT_CLASSES = ("watchtower",)
# Lines are cut into pieces this long to share their length between km bins.
_KM_STEP_M = 5.0


@dataclass(frozen=True, slots=True)
class ClassScore:
    """Scores of one class.

    Attributes
    ----------
    cls : str
    kind : {"point", "line"}
    precision, recall, f1 : float
        NaN where undefined (no predictions, no truth; F1 is 0 when only one side is empty).
    n_pred, n_truth : int
        Objects scored (after exclusions).
    n_matched : int
        Points: matched pairs. Lines: truth lines with any length near a prediction.
    pred_m, truth_m : float
        Lines: scored lengths, metres (0 for points).
    pred_near_m, truth_near_m : float
        Lines: predicted length within the buffer of truth, truth length within the buffer of
        predictions, metres.
    """

    cls: str
    kind: Literal["point", "line"]
    precision: float
    recall: float
    f1: float
    n_pred: int
    n_truth: int
    n_matched: int
    pred_m: float = 0.0
    truth_m: float = 0.0
    pred_near_m: float = 0.0
    truth_near_m: float = 0.0


@dataclass(frozen=True, slots=True)
class KmError:
    """Fence metres and tower counts of one border kilometre, predicted and true."""

    km_start: float
    km_end: float
    fence_m_pred: float
    fence_m_truth: float
    towers_pred: int
    towers_truth: int


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of :func:`evaluate`.

    Attributes
    ----------
    status : str
        Which status was scored (``"new"``) or ``"all"``.
    buffer_m, point_tolerance_m : float
    classes : tuple of ClassScore
        One per class (fence, patrol_lane, watchtower).
    per_km : tuple of KmError
        One per border kilometre evaluated (empty without km information).
    fence_m_total_pred, fence_m_total_truth : float
        Fence metres (of the scored status), metres.
    towers_total_pred, towers_total_truth : int
    fence_m_per_km_mae, towers_per_km_mae : float
        Mean absolute per-km error of fence metres and of tower counts (NaN without km bins).
    fence_m_per_km_pred, towers_per_km_pred : float
        Predicted fence metres and towers per km evaluated.
    n_truth_excluded : int
        Truth objects left out (not observable, or outside the analysed area).
    """

    status: str
    buffer_m: float
    point_tolerance_m: float
    classes: tuple[ClassScore, ...]
    per_km: tuple[KmError, ...]
    fence_m_total_pred: float
    fence_m_total_truth: float
    towers_total_pred: int
    towers_total_truth: int
    fence_m_per_km_mae: float
    towers_per_km_mae: float
    fence_m_per_km_pred: float
    towers_per_km_pred: float
    n_truth_excluded: int = 0

    def score(self, cls: str) -> ClassScore:
        """Return the scores of one class."""
        for item in self.classes:
            if item.cls == cls:
                return item
        raise KeyError(cls)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN as None), the content of ``evaluation.json``."""
        return _nan_to_none(asdict(self))


# ====================================================================== scoring
def evaluate(
    detections: gpd.GeoDataFrame,
    truth: gpd.GeoDataFrame,
    *,
    status: str = "new",
    buffer_m: float = 5.0,
    point_tolerance_m: float = 5.0,
    exclude: shapely.Geometry | None = None,
    include: shapely.Geometry | None = None,
    border: Border | None = None,
    km_range: tuple[float, float] | None = None,
) -> Evaluation:
    """Score detections against truth.

    Parameters
    ----------
    detections, truth : GeoDataFrame
        The detections schema (``class``, ``status``, geometry; ``km`` for per-km errors without
        a ``border``). Truth may have a boolean ``observable`` column; ``False`` rows are not
        scored. Frames without a CRS are taken as EPSG:4326.
    status : {"new", "all", "existing", "removed", "upgraded"}
        Score only objects with this status on both sides (``"all"``: the full inventory).
    buffer_m : float
        Lines: distance within which a line counts as near the other side's lines.
    point_tolerance_m : float
        Points: the largest distance of a matched pair.
    exclude : shapely geometry, optional
        Area (EPSG:4326) left out of the scoring on both sides.
    include : shapely geometry, optional
        Area (EPSG:4326) scored; everything outside it is left out on both sides (the run's
        analysed tiles).
    border : Border, optional
        Splits line lengths between border kilometres exactly; without it a line's length goes
        to the km of its ``km`` property.
    km_range : (float, float), optional
        The km range evaluated (whole km bins); default: the range the objects span.

    Returns
    -------
    Evaluation
    """
    if status != "all" and status not in STATUSES:
        raise ValueError(f"status must be 'all' or one of {STATUSES}, got {status!r}")
    det = _prepare(detections, status)
    tru_all = _prepare(truth, status)
    observable = _observable(tru_all)
    crs = _metric_crs([det, tru_all])
    det, tru_all = det.to_crs(crs), tru_all.to_crs(crs)
    area = _area_in(crs, include, exclude)
    det = _clip(det, *area)
    tru = _clip(tru_all[observable], *area)
    hidden = _clip(tru_all[~observable], *area)
    excluded = len(tru_all) - len(tru)
    classes = []
    for cls in INFRA_CLASSES:
        d, t, h = (f[f["class"] == cls] for f in (det, tru, hidden))
        if cls in POINT_CLASSES:
            classes.append(_score_points(cls, d, t, h, point_tolerance_m))
        else:
            classes.append(_score_lines(cls, d, t, h, buffer_m))
    per_km = _per_km(det, tru, crs, border, km_range)
    return _assemble(status, buffer_m, point_tolerance_m, classes, per_km, det, tru, excluded)


def _prepare(frame: gpd.GeoDataFrame, status: str) -> gpd.GeoDataFrame:
    out = frame if frame.crs is not None else frame.set_crs("EPSG:4326")
    if len(out) == 0:  # an empty FeatureCollection reads back with no property columns at all
        missing = {"class": object, "status": object, "km": float}
        out = out.assign(
            **{c: pd.Series(dtype=t) for c, t in missing.items() if c not in out.columns}
        )
    out = out[~out.geometry.isna() & ~out.geometry.is_empty]
    if status != "all":
        out = out[out["status"].astype(str) == status]
    return out.reset_index(drop=True)


def _observable(frame: gpd.GeoDataFrame) -> npt.NDArray[np.bool_]:
    if "observable" not in frame.columns:
        return np.ones(len(frame), dtype=bool)
    values = frame["observable"]
    return ~values.map(lambda v: v is False or v == 0 or str(v).lower() in ("false", "0")).to_numpy(
        dtype=bool
    )


def _metric_crs(frames: Iterable[gpd.GeoDataFrame]) -> pyproj.CRS:
    """The UTM zone of the middle of all geometries (EPSG:4326 fallback for nothing at all)."""
    bounds = [f.to_crs("EPSG:4326").total_bounds for f in frames if len(f)]
    if not bounds:
        return pyproj.CRS.from_epsg(32652)
    b = np.array(bounds)
    lon = (b[:, 0].min() + b[:, 2].max()) / 2.0
    lat = (b[:, 1].min() + b[:, 3].max()) / 2.0
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return pyproj.CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _area_in(
    crs: pyproj.CRS, include: shapely.Geometry | None, exclude: shapely.Geometry | None
) -> tuple[shapely.Geometry | None, shapely.Geometry | None]:
    def to(g: shapely.Geometry | None) -> shapely.Geometry | None:
        if g is None:
            return None
        return gpd.GeoSeries([g], crs="EPSG:4326").to_crs(crs).iloc[0]

    return to(include), to(exclude)


def _clip(
    frame: gpd.GeoDataFrame, include: shapely.Geometry | None, exclude: shapely.Geometry | None
) -> gpd.GeoDataFrame:
    """Keep the part of each geometry inside ``include`` and outside ``exclude``."""
    if include is None and exclude is None:
        return frame
    geoms = frame.geometry.array
    if include is not None:
        geoms = shapely.intersection(np.asarray(geoms), include)
    if exclude is not None:
        geoms = shapely.difference(np.asarray(geoms), exclude)
    out = frame.copy()
    out[frame.geometry.name] = gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs)
    return out[~out.geometry.is_empty].reset_index(drop=True)


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def _f1(precision: float, recall: float) -> float:
    if math.isnan(precision) and math.isnan(recall):
        return math.nan
    if math.isnan(precision) or math.isnan(recall) or precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def _point_xy(frame: gpd.GeoDataFrame) -> npt.NDArray[np.float64]:
    if len(frame) == 0:
        return np.empty((0, 2))
    return shapely.get_coordinates(shapely.centroid(np.asarray(frame.geometry.array)))


def match_points(
    pred: npt.NDArray[np.float64], truth: npt.NDArray[np.float64], tolerance: float
) -> list[tuple[int, int]]:
    """One-to-one matching of two point sets within ``tolerance`` (most pairs, then least distance).

    Examples
    --------
    >>> import numpy as np
    >>> match_points(np.array([[0.0, 0.0], [4.0, 0.0]]), np.array([[3.0, 0.0]]), 5.0)
    [(1, 0)]
    """
    if len(pred) == 0 or len(truth) == 0:
        return []
    tree = shapely.STRtree(shapely.points(truth))
    pi, ti = tree.query(shapely.points(pred), predicate="dwithin", distance=tolerance)
    if len(pi) == 0:
        return []
    n_p, n_t = len(pred), len(truth)
    graph = coo_matrix((np.ones(len(pi)), (pi, n_p + ti)), shape=(n_p + n_t, n_p + n_t))
    _, labels = connected_components(graph, directed=False)
    pairs: list[tuple[int, int]] = []
    for label in np.unique(labels[pi]):
        rows = np.unique(pi[labels[pi] == label])
        cols = np.unique(ti[labels[n_p + ti] == label])
        dist = np.hypot(*(pred[rows][:, None, :] - truth[cols][None, :, :]).transpose(2, 0, 1))
        big = tolerance * (len(rows) + len(cols) + 1) * 10.0
        cost = np.where(dist <= tolerance, dist, big)
        r, c = linear_sum_assignment(cost)
        pairs += [(int(rows[a]), int(cols[b])) for a, b in zip(r, c) if dist[a, b] <= tolerance]
    return sorted(pairs)


def _score_points(
    cls: str,
    pred: gpd.GeoDataFrame,
    truth: gpd.GeoDataFrame,
    hidden: gpd.GeoDataFrame,
    tolerance: float,
) -> ClassScore:
    p_xy, t_xy, h_xy = _point_xy(pred), _point_xy(truth), _point_xy(hidden)
    pairs = match_points(p_xy, t_xy, tolerance)
    matched = {a for a, _ in pairs}
    rest = np.array([i for i in range(len(p_xy)) if i not in matched], dtype=np.intp)
    ignored = (
        {rest[a] for a, _ in match_points(p_xy[rest], h_xy, tolerance)} if len(rest) else set()
    )
    n_pred = len(p_xy) - len(ignored)
    tp = len(pairs)
    precision, recall = _ratio(tp, n_pred), _ratio(tp, len(t_xy))
    return ClassScore(
        cls, "point", precision, recall, _f1(precision, recall), n_pred, len(t_xy), tp
    )


def _union_buffer(frame: gpd.GeoDataFrame, distance: float) -> shapely.Geometry:
    if len(frame) == 0:
        return shapely.Polygon()
    return shapely.union_all(shapely.buffer(np.asarray(frame.geometry.array), distance))


def _score_lines(
    cls: str,
    pred: gpd.GeoDataFrame,
    truth: gpd.GeoDataFrame,
    hidden: gpd.GeoDataFrame,
    buffer_m: float,
) -> ClassScore:
    near_truth = _union_buffer(truth, buffer_m)
    ignore = shapely.difference(_union_buffer(hidden, buffer_m), near_truth)
    p_geoms = np.asarray(pred.geometry.array)
    if not ignore.is_empty and len(p_geoms):
        p_geoms = shapely.difference(p_geoms, ignore)
    t_geoms = np.asarray(truth.geometry.array)
    near_pred = _union_buffer(pred, buffer_m)
    pred_m = float(shapely.length(p_geoms).sum())
    pred_near = float(shapely.length(shapely.intersection(p_geoms, near_truth)).sum())
    truth_near_each = shapely.length(shapely.intersection(t_geoms, near_pred))
    truth_m = float(shapely.length(t_geoms).sum())
    precision, recall = _ratio(pred_near, pred_m), _ratio(float(truth_near_each.sum()), truth_m)
    return ClassScore(
        cls,
        "line",
        precision,
        recall,
        _f1(precision, recall),
        n_pred=int((shapely.length(p_geoms) > 0).sum()),
        n_truth=len(t_geoms),
        n_matched=int((truth_near_each > 0).sum()),
        pred_m=pred_m,
        truth_m=truth_m,
        pred_near_m=pred_near,
        truth_near_m=float(truth_near_each.sum()),
    )


# ====================================================================== per km
def _line_km(
    frame: gpd.GeoDataFrame, crs: pyproj.CRS, border: Border | None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(km, metres) pairs: each line's length shared out to the km where it lies."""
    if len(frame) == 0:
        return np.empty(0), np.empty(0)
    geoms = np.asarray(frame.geometry.array)
    if border is None:
        km = pd.to_numeric(frame.get("km", pd.Series(np.nan, index=frame.index)), errors="coerce")
        return km.to_numpy(dtype=float), shapely.length(geoms).astype(float)
    pieces = shapely.get_parts(shapely.segmentize(geoms, _KM_STEP_M))
    mids, lengths = [], []
    for piece in pieces:
        xy = shapely.get_coordinates(piece)
        if len(xy) < 2:
            continue
        mids.append((xy[:-1] + xy[1:]) / 2.0)
        lengths.append(np.hypot(*np.diff(xy, axis=0).T))
    if not mids:
        return np.empty(0), np.empty(0)
    mid = np.vstack(mids)
    lon, lat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
        mid[:, 0], mid[:, 1]
    )
    return border.locate(lon, lat)[0], np.concatenate(lengths)


def _point_km(
    frame: gpd.GeoDataFrame, crs: pyproj.CRS, border: Border | None
) -> npt.NDArray[np.float64]:
    if len(frame) == 0:
        return np.empty(0)
    if border is None:
        km = pd.to_numeric(frame.get("km", pd.Series(np.nan, index=frame.index)), errors="coerce")
        return km.to_numpy(dtype=float)
    xy = _point_xy(frame)
    lon, lat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
        xy[:, 0], xy[:, 1]
    )
    return border.locate(lon, lat)[0]


def _per_km(
    det: gpd.GeoDataFrame,
    tru: gpd.GeoDataFrame,
    crs: pyproj.CRS,
    border: Border | None,
    km_range: tuple[float, float] | None,
) -> tuple[KmError, ...]:
    fence_p = _line_km(det[det["class"] == "fence"], crs, border)
    fence_t = _line_km(tru[tru["class"] == "fence"], crs, border)
    tower_p = _point_km(det[det["class"] == "watchtower"], crs, border)
    tower_t = _point_km(tru[tru["class"] == "watchtower"], crs, border)
    if km_range is None:
        kms = np.concatenate([fence_p[0], fence_t[0], tower_p, tower_t])
        kms = kms[np.isfinite(kms)]
        if len(kms) == 0:
            return ()
        km_range = (float(np.floor(kms.min())), float(np.floor(kms.max())) + 1.0)
    start = math.floor(km_range[0])
    n = max(1, math.ceil(km_range[1] - 1e-9) - start)
    edges = start + np.arange(n + 1, dtype=np.float64)
    edges[0], edges[-1] = km_range[0], max(km_range[1], edges[0] + 1e-9)

    def hist(km: npt.NDArray[np.float64], w: npt.NDArray[np.float64] | None = None) -> Any:
        idx = np.clip(np.searchsorted(edges, km, side="right") - 1, 0, n - 1)
        ok = np.isfinite(km) & (km >= edges[0] - 1e-9) & (km <= edges[-1] + 1e-9)
        return np.bincount(idx[ok], weights=None if w is None else w[ok], minlength=n)

    fp, ft = hist(*fence_p), hist(*fence_t)
    tp, tt = hist(tower_p), hist(tower_t)
    return tuple(
        KmError(
            float(edges[i]), float(edges[i + 1]), float(fp[i]), float(ft[i]), int(tp[i]), int(tt[i])
        )
        for i in range(n)
    )


def _assemble(
    status: str,
    buffer_m: float,
    tol: float,
    classes: list[ClassScore],
    per_km: tuple[KmError, ...],
    det: gpd.GeoDataFrame,
    tru: gpd.GeoDataFrame,
    excluded: int,
) -> Evaluation:
    def fence_m(frame: gpd.GeoDataFrame) -> float:
        return float(frame[frame["class"] == "fence"].geometry.length.sum())

    def towers(frame: gpd.GeoDataFrame) -> int:
        return int((frame["class"] == "watchtower").sum())

    km_len = sum(k.km_end - k.km_start for k in per_km)
    fence_err = [abs(k.fence_m_pred - k.fence_m_truth) for k in per_km]
    tower_err = [abs(k.towers_pred - k.towers_truth) for k in per_km]
    return Evaluation(
        status=status,
        buffer_m=float(buffer_m),
        point_tolerance_m=float(tol),
        classes=tuple(classes),
        per_km=per_km,
        fence_m_total_pred=fence_m(det),
        fence_m_total_truth=fence_m(tru),
        towers_total_pred=towers(det),
        towers_total_truth=towers(tru),
        fence_m_per_km_mae=float(np.mean(fence_err)) if per_km else math.nan,
        towers_per_km_mae=float(np.mean(tower_err)) if per_km else math.nan,
        fence_m_per_km_pred=fence_m(det) / km_len if km_len > 0 else math.nan,
        towers_per_km_pred=towers(det) / km_len if km_len > 0 else math.nan,
        n_truth_excluded=int(excluded),
    )


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6) + 0.0
    return value


# ====================================================================== files
def read_truth(path: PathLikeStr) -> gpd.GeoDataFrame:
    """Read a ground-truth vector file (the detections schema, optional ``observable``).

    Raises
    ------
    TruthError
        The file is missing, unreadable, lacks ``class``/``status`` or has unknown values.
    """
    path = Path(path)
    if not path.is_file():
        raise TruthError(f"{path}: truth file not found")
    try:
        frame = gpd.read_file(path)
    except Exception as err:  # pyogrio raises several types for unreadable files
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TruthError(f"{path}: cannot read as a vector file ({reason})") from err
    missing = [c for c in ("class", "status") if c not in frame.columns]
    if missing:
        raise TruthError(
            f"{path}: truth file lacks column(s) {', '.join(missing)}; it needs the "
            "detections.geojson schema (class, status, geometry; optional observable)"
        )
    bad_cls = sorted(set(frame["class"].astype(str)) - set(INFRA_CLASSES))
    bad_status = sorted(set(frame["status"].astype(str)) - set(STATUSES))
    if bad_cls or bad_status:
        raise TruthError(
            f"{path}: unknown class/status values {bad_cls + bad_status}; classes are "
            f"{', '.join(INFRA_CLASSES)}, statuses {', '.join(STATUSES)}"
        )
    return frame if frame.crs is not None else frame.set_crs("EPSG:4326")


def evaluate_run(
    run_dir: PathLikeStr, truth_path: PathLikeStr, *, status: str = "new"
) -> Evaluation:
    """Evaluate a finished run against a truth file and write ``run_dir/evaluation.json``.

    Scores only where the run analysed (its done tiles with ``analysed_fraction > 0`` in the
    ``tiles`` layer of ``bordewatch.gpkg``) and splits lengths per km along the run's ``border``
    layer; truth with ``observable == False`` is left out.

    Raises
    ------
    TruthError
        The truth file is unusable.
    RunFolderError
        The run folder has no readable ``detections.geojson``.
    """
    run_dir = Path(run_dir)
    truth = read_truth(truth_path)
    det_path = run_dir / "detections.geojson"
    if not det_path.is_file():
        raise RunFolderError(
            f"{det_path}: no detections in the run folder; run `bordewatch detect --out "
            f"{run_dir}` first"
        )
    try:
        detections = gpd.read_file(det_path)
    except Exception as err:  # pyogrio raises several types for unreadable files
        raise RunFolderError(f"{det_path}: cannot read the run's detections ({err})") from err
    include, border, km_range = _run_context(run_dir / "bordewatch.gpkg")
    result = evaluate(
        detections, truth, status=status, include=include, border=border, km_range=km_range
    )
    text = json.dumps(
        {"run": str(run_dir), "truth": str(truth_path), **result.to_dict()},
        indent=2,
        sort_keys=True,
        allow_nan=False,
    )
    atomic_write_text(run_dir / "evaluation.json", text + "\n")
    return result


def _run_context(
    gpkg: Path,
) -> tuple[shapely.Geometry | None, Border | None, tuple[float, float] | None]:
    """Analysed area (EPSG:4326), border and km range of a run, from its GeoPackage."""
    if not gpkg.is_file():
        return None, None, None
    import pyogrio

    names = {str(n) for n in pyogrio.list_layers(gpkg)[:, 0]}
    include, km_range, border = None, None, None
    if "tiles" in names:
        tiles = gpd.read_file(gpkg, layer="tiles").to_crs("EPSG:4326")
        ok = np.ones(len(tiles), dtype=bool)
        if "status" in tiles.columns:
            ok &= tiles["status"].astype(str).eq("done").to_numpy()
        if "analysed_fraction" in tiles.columns:
            ok &= tiles["analysed_fraction"].astype(float).fillna(0.0).to_numpy() > 0
        include = shapely.union_all(np.asarray(tiles.geometry.array)[ok])
        if len(tiles) and {"km_start", "km_end"} <= set(tiles.columns):
            km_range = (float(tiles["km_start"].min()), float(tiles["km_end"].max()))
    if "border" in names:
        frame = gpd.read_file(gpkg, layer="border").to_crs("EPSG:4326")
        if len(frame) and frame.geometry.iloc[0].geom_type == "LineString":
            name = str(frame["name"].iloc[0]) if "name" in frame.columns else "border"
            border = Border(frame.geometry.iloc[0], name=name)
    return include, border, km_range


def format_table(result: Evaluation) -> str:
    """A plain-text table of an evaluation (what ``bordewatch evaluate`` prints)."""

    def num(v: float) -> str:
        return "   n/a" if math.isnan(v) else f"{v:6.3f}"

    lines = [
        f"status: {result.status}   line buffer: {result.buffer_m:g} m   "
        f"point tolerance: {result.point_tolerance_m:g} m",
        f"{'class':<12} {'truth':>10} {'pred':>10} {'precision':>9} {'recall':>7} {'F1':>7}",
    ]
    for s in result.classes:
        if s.kind == "line":
            truth, pred = f"{s.truth_m:,.0f} m", f"{s.pred_m:,.0f} m"
        else:
            truth, pred = f"{s.n_truth}", f"{s.n_pred}"
        lines.append(
            f"{s.cls:<12} {truth:>10} {pred:>10} {num(s.precision):>9} {num(s.recall):>7} "
            f"{num(s.f1):>7}"
        )
    n_km = len(result.per_km)
    lines.append(
        f"fence: {result.fence_m_total_pred:,.0f} m predicted, {result.fence_m_total_truth:,.0f} m "
        f"true; per-km MAE {num(result.fence_m_per_km_mae).strip()} m over {n_km} km"
    )
    lines.append(
        f"towers: {result.towers_total_pred} predicted, {result.towers_total_truth} true; "
        f"per-km MAE {num(result.towers_per_km_mae).strip()}"
    )
    if result.n_truth_excluded:
        lines.append(f"truth left out (not observable / not analysed): {result.n_truth_excluded}")
    return "\n".join(lines)
