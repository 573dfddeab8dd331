"""The publishable report of a finished run: report.html (self-contained), report.md, figures.

:func:`build_report` reads a run folder (``detections.geojson`` — possibly edited by a user in
QGIS —, the ``tiles`` and ``border`` layers of ``bordewatch.gpkg``, ``run.json`` and the input
imagery named there), recomputes the per-km statistics and writes ``coverage.csv``,
``segments.geojson``, the ``segments`` layer of ``bordewatch.gpkg`` (its other layers, a user's
edits included, are kept), ``report.html``, ``report.md`` and ``figures/*.png``. It never
re-detects.

Every number quoted appears once in the per-km rows (rounded there) and is formatted by the same
functions for the CSV, the HTML and the Markdown, so all three agree. The HTML embeds its figures
as base64 PNG, has inline CSS, no script and no external reference; every string taken from the
inputs is escaped (jinja2 autoescape).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import jinja2
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from bordewatch import figures, outputs
from bordewatch.atomic import atomic_write_bytes, atomic_write_text
from bordewatch.border import DEFAULT_BORDER_ID, Border, default_border, hrw_areas, load_border
from bordewatch.errors import BordewatchError, RunFolderError
from bordewatch.rollup import SEGMENT_COLUMNS, Headline, headline, per_area, rollup_per_km

log = logging.getLogger(__name__)

__all__ = [
    "ReportFiles",
    "RunInputs",
    "build_report",
    "detections_source",
    "format_segments",
    "read_chip",
    "read_run",
]

_CLASSES = ("fence", "patrol_lane", "watchtower")
_STATUSES = ("new", "existing", "removed", "upgraded")
_CHIPS_PER_CLASS = 3
_CHIP_MAX_PX = 240
_OFFICIAL_PRK_CHN_KM = 1352


# ---------------------------------------------------------------------- reading a run
@dataclass(frozen=True, slots=True)
class RunInputs:
    """What the report reads from a finished run folder.

    Attributes
    ----------
    run_dir : Path
    meta : dict
        ``run.json`` as parsed.
    border : Border
        The full border line the run's chainage refers to.
    detections : GeoDataFrame
        ``detections.geojson`` (EPSG:4326).
    tiles : GeoDataFrame
        The ``tiles`` layer (run CRS).
    km_range : tuple of float
    side : str
    crs : str
        The run's metric CRS.
    detections_source : str
        Where the detections were read: ``detections.geojson``, or the GPKG's ``detections``
        layer when that is the copy a user edited (see :func:`detections_source`).
    """

    run_dir: Path
    meta: dict[str, Any]
    border: Border
    detections: gpd.GeoDataFrame
    tiles: gpd.GeoDataFrame
    km_range: tuple[float, float]
    side: str
    crs: str
    detections_source: str = "detections.geojson"

    @property
    def uses_default_border(self) -> bool:
        """Whether the run used the shipped North Korea–China line."""
        default = default_border()
        return self.border.name == DEFAULT_BORDER_ID and math.isclose(
            self.border.length_km, default.length_km, rel_tol=1e-3
        )


def read_run(run_dir: Path) -> RunInputs:
    """Read a finished run folder (see the module docstring).

    Raises
    ------
    RunFolderError
        A required file is missing or unreadable, or detections hold unknown classes/statuses.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: run folder not found")
    meta = _read_meta(run_dir / "run.json")
    gpkg = run_dir / "bordewatch.gpkg"
    try:
        km_range = (float(meta["km_range"][0]), float(meta["km_range"][1]))
        crs = str(meta["crs"])
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise RunFolderError(
            f"{run_dir / 'run.json'}: lacks a valid 'km_range' or 'crs' ({err})"
        ) from err
    path, layer = detections_source(run_dir)
    return RunInputs(
        run_dir=run_dir,
        meta=meta,
        border=_read_border(meta, gpkg),
        detections=_read_detections(path, layer=layer),
        tiles=_read_tiles(gpkg),
        km_range=km_range,
        side=str(meta.get("parameters", {}).get("side", "both")),
        crs=crs,
        detections_source=path.name + (f" (layer {layer!r})" if layer else ""),
    )


def _detection_ids(path: Path, layer: str | None) -> list[str] | None:
    import pyogrio

    try:
        table = pyogrio.read_dataframe(path, layer=layer, columns=["id"], read_geometry=False)
    except Exception:  # no such layer / column, unreadable: not a candidate
        return None
    return sorted(map(str, table["id"])) if "id" in table.columns else None


def detections_source(run_dir: Path) -> tuple[Path, str | None]:
    """Which copy of the detections to report: the GeoJSON, or the GPKG layer a user edited.

    A run writes the same detections twice: ``detections.geojson`` and the ``detections`` layer
    of ``bordewatch.gpkg`` (the one QGIS opens styled). A user who deletes false positives edits
    one of them. When both hold the same detection ids the GeoJSON is used; when they differ, the
    one modified last is used, and a warning names both so the choice is never silent.

    Returns
    -------
    path : Path
    layer : str or None
        ``"detections"`` when the GPKG layer is to be read.
    """
    run_dir = Path(run_dir)
    geojson, gpkg = run_dir / "detections.geojson", run_dir / "bordewatch.gpkg"
    if not (geojson.exists() and gpkg.exists()):
        return geojson, None
    in_geojson, in_gpkg = _detection_ids(geojson, None), _detection_ids(gpkg, "detections")
    if in_geojson is None or in_gpkg is None or in_geojson == in_gpkg:
        return geojson, None
    use_gpkg = gpkg.stat().st_mtime > geojson.stat().st_mtime
    chosen, other = (gpkg, geojson) if use_gpkg else (geojson, gpkg)
    n_chosen, n_other = (
        (len(in_gpkg), len(in_geojson)) if use_gpkg else (len(in_geojson), len(in_gpkg))
    )
    log.warning(
        "%s: its detections differ from %s (%d vs %d features); using %s, the one edited last",
        chosen,
        other,
        n_chosen,
        n_other,
        chosen.name,
    )
    return chosen, "detections" if use_gpkg else None


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise RunFolderError(f"{path}: not found; is this a finished bordewatch run folder?")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunFolderError(f"{path}: unreadable run record ({err})") from err
    if not isinstance(meta, dict):
        raise RunFolderError(f"{path}: expected a JSON object")
    return meta


def _read_layer(gpkg: Path, layer: str) -> gpd.GeoDataFrame:
    if not gpkg.exists():
        raise RunFolderError(f"{gpkg}: not found; is this a finished bordewatch run folder?")
    try:
        return gpd.read_file(gpkg, layer=layer)
    except Exception as err:  # pyogrio raises several types for missing layers / bad files
        raise RunFolderError(f"{gpkg}: cannot read layer {layer!r} ({err})") from err


def _read_tiles(gpkg: Path) -> gpd.GeoDataFrame:
    tiles = _read_layer(gpkg, "tiles")
    missing = {"km_start", "km_end", "analysed_fraction"} - set(tiles.columns)
    if missing:
        raise RunFolderError(f"{gpkg}: layer 'tiles' lacks column(s) {sorted(missing)}")
    return tiles


def _read_border(meta: dict[str, Any], gpkg: Path) -> Border:
    """The run's full border line: the ``border`` layer, else its source file, else the default."""
    info = meta.get("border", {}) or {}
    want_km = float(info.get("length_km", 0.0) or 0.0)
    name = str(info.get("name", "border"))
    candidates: list[Border] = []
    if gpkg.exists():
        layer = _read_layer(gpkg, "border").to_crs("EPSG:4326")
        if len(layer):
            line = shapely.line_merge(layer.geometry.iloc[0])
            if line.geom_type == "LineString":
                candidates.append(
                    Border(line, name=name, source=str(info.get("source", "")),
                           left=str(info.get("left", "left")), right=str(info.get("right", "right")))
                )  # fmt: skip
    source = Path(str(info.get("source", "")))
    if source.suffix and source.exists():
        candidates.append(load_border(source))
    if name == DEFAULT_BORDER_ID:
        candidates.append(default_border())
    for border in candidates:
        if want_km <= 0 or math.isclose(border.length_km, want_km, rel_tol=1e-3, abs_tol=0.01):
            return border
    raise RunFolderError(
        f"{gpkg}: no border line of {want_km:g} km (run.json 'border') found in layer 'border', "
        "its source file or the default line; the chainage of the run cannot be recovered"
    )


def _read_detections(path: Path, *, layer: str | None = None) -> gpd.GeoDataFrame:
    if not path.exists():
        raise RunFolderError(f"{path}: not found; is this a finished bordewatch run folder?")
    try:
        det = gpd.read_file(path, layer=layer)
    except Exception as err:
        what = f"layer {layer!r}" if layer else "GeoJSON"
        raise RunFolderError(f"{path}: cannot read as {what} ({err})") from err
    if len(det) == 0:
        return gpd.GeoDataFrame(
            {"id": [], "class": [], "status": [], "score": []}, geometry=[], crs="EPSG:4326"
        )
    for column, allowed in (("class", _CLASSES), ("status", _STATUSES)):
        if column not in det.columns:
            raise RunFolderError(f"{path}: features lack the property {column!r}")
        bad = sorted(set(det[column].astype(str)) - set(allowed))
        if bad:
            raise RunFolderError(
                f"{path}: unknown {column} value(s) {bad}; expected one of {list(allowed)}"
            )
    det = det[det.geometry.notna() & ~det.geometry.is_empty].copy()
    if det.crs is None:
        det = det.set_crs("EPSG:4326")
    if "score" not in det.columns:
        det["score"] = np.nan
    if "id" not in det.columns:
        det["id"] = [f"f{i}" for i in range(len(det))]
    return det.to_crs("EPSG:4326").reset_index(drop=True)


# ---------------------------------------------------------------------- formatting
_KM_COLS = ("km_start", "km_end")
_FRACTION_COLS = ("analysed", "fenced_before", "fenced_after")
_METRE_COLS = ("new_fence_m", "upgraded_fence_m", "new_patrol_lane_m")
_COUNT_COLS = ("watchtowers_before", "watchtowers_after", "new_watchtowers")


def format_segments(segments: pd.DataFrame, *, percent: bool = False) -> pd.DataFrame:
    """Format per-km rows as strings for the HTML and Markdown tables.

    The values are those of ``coverage.csv`` (rounded once, in the roll-up); only the number of
    decimals shown is fixed here.

    Parameters
    ----------
    segments : DataFrame
        Per-km rows (:data:`bordewatch.rollup.SEGMENT_COLUMNS`).
    percent : bool
        Show fractions as percentages with two decimals (the tables) instead of fractions with
        four (the CSV); both are the same number.
    """
    out = pd.DataFrame(index=segments.index)
    for c in SEGMENT_COLUMNS:
        values = segments[c].to_numpy()
        if c in _KM_COLS:
            out[c] = [f"{v:.3f}" for v in values]
        elif c in _FRACTION_COLS:
            out[c] = [f"{100 * v:.2f}" if percent else f"{v:.4f}" for v in values]
        elif c in _METRE_COLS:
            out[c] = [f"{v:.1f}" for v in values]
        else:
            out[c] = [f"{int(v):d}" for v in values]
    return out


def _fmt(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return f"{float(value):,.{digits}f}"


def _area_rows(table: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    for r in table.to_dict("records"):
        rows.append(
            {
                "area": str(r["area"]),
                "km": f"{r['km_start']:.1f}–{r['km_end']:.1f}",
                "border_km": _fmt(r["border_km"]),
                "analysed": f"{_fmt(r['analysed_km'])} ({_fmt(r['analysed_pct'], 1)} %)",
                "fenced_before": f"{_fmt(r['fenced_before_km'])} ({_fmt(r['fenced_before_pct'], 1)} %)",
                "fenced_after": f"{_fmt(r['fenced_after_km'])} ({_fmt(r['fenced_after_pct'], 1)} %)",
                "new_fence_km": _fmt(r["new_fence_km"]),
                "upgraded_fence_km": _fmt(r["upgraded_fence_km"]),
                "new_patrol_lane_km": _fmt(r["new_patrol_lane_km"]),
                "towers": f"{int(r['watchtowers_before']):,} → {int(r['watchtowers_after']):,} "
                f"(+{int(r['new_watchtowers']):,})",
            }
        )
    return rows


# ---------------------------------------------------------------------- evidence chips
def _strongest(det: gpd.GeoDataFrame, cls: str, k: int) -> gpd.GeoDataFrame:
    """The ``k`` highest-scoring detections of a class, changes (new/upgraded) first."""
    sel = det[det["class"].astype(str).eq(cls).to_numpy()].copy()
    if len(sel) == 0:
        return sel
    sel["_change"] = sel["status"].astype(str).isin(["new", "upgraded"])
    sel["_score"] = pd.to_numeric(sel["score"], errors="coerce").fillna(-1.0)
    sel["_id"] = sel["id"].astype(str)
    sel = sel.sort_values(
        ["_change", "_score", "_id"], ascending=[False, False, True], kind="stable"
    )
    return sel.head(k).drop(columns=["_change", "_score", "_id"])


def _resolve(path: str, run_dir: Path) -> Path | None:
    for candidate in (Path(path), run_dir / path, run_dir / Path(path).name):
        if candidate.exists():
            return candidate
    return None


def _band_indexes(entry: dict[str, Any], count: int) -> list[int]:
    names = [str(b).lower() for b in entry.get("bands", [])]
    if {"red", "green", "blue"} <= set(names) and len(names) == count:
        return [names.index(b) + 1 for b in ("red", "green", "blue")]
    return [1, 2, 3] if count >= 3 else [1, 1, 1]


def read_chip(
    entries: Sequence[dict[str, Any]],
    run_dir: Path,
    *,
    crs: str,
    bounds: tuple[float, float, float, float],
    res_m: float,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]] | None:
    """Read an RGB window of one epoch's imagery, warped onto a north-up grid in ``crs``.

    Parameters
    ----------
    entries : sequence of dict
        The epoch's ``run.json`` input records (``path``, ``bands``); the first file with
        valid pixels over most of the window is used.
    run_dir : Path
        Relative paths are tried from the working directory, then the run folder.
    crs : str
    bounds : tuple of float
        ``(xmin, ymin, xmax, ymax)`` in ``crs``.
    res_m : float
        Pixel size of the chip.

    Returns
    -------
    tuple of (ndarray of float32, shape (3, row, col), ndarray of bool, shape (row, col)) or None
        The raw RGB values and their validity; ``None`` where no file covers the window.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin
    from rasterio.vrt import WarpedVRT

    x0, y0, x1, y1 = bounds
    width, height = max(1, round((x1 - x0) / res_m)), max(1, round((y1 - y0) / res_m))
    transform = from_origin(x0, y1, res_m, res_m)
    best: tuple[float, npt.NDArray[np.float32], npt.NDArray[np.bool_]] | None = None
    for entry in entries:
        path = _resolve(str(entry.get("path", "")), run_dir)
        if path is None:
            continue
        try:
            with rasterio.open(path) as src, WarpedVRT(
                src, crs=crs, transform=transform, width=width, height=height,
                resampling=Resampling.bilinear,
            ) as vrt:  # fmt: skip
                idx = _band_indexes(entry, src.count)
                data = vrt.read(idx).astype(np.float32)
                with warnings.catch_warnings():
                    # the VRT's alpha and the source's nodata say the same thing here
                    warnings.simplefilter("ignore", rasterio.errors.NodataShadowWarning)
                    valid = vrt.read_masks(1) > 0
        except rasterio.errors.RasterioError:
            continue
        share = float(valid.mean())
        if best is None or share > best[0]:
            best = (share, data, valid)
        if share > 0.9:
            break
    if best is None or best[0] == 0.0:
        return None
    return best[1], best[2]


def _stretch_pair(
    *epochs: tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]] | None,
) -> list[npt.NDArray[np.float32] | None]:
    """One linear stretch (1–99 % of all valid values) for both epochs, so they compare."""
    vals = [d[:, v].ravel() for d, v in (e for e in epochs if e is not None)]
    pooled = np.concatenate(vals) if vals else np.zeros(0, np.float32)
    lo, hi = np.percentile(pooled, [1, 99]) if pooled.size else (0.0, 1.0)
    scale = float(hi - lo) if hi > lo else 1.0
    out: list[npt.NDArray[np.float32] | None] = []
    for e in epochs:
        if e is None:
            out.append(None)
            continue
        img = np.clip((np.moveaxis(e[0], 0, -1) - lo) / scale, 0.0, 1.0).astype(np.float32)
        img[~e[1]] = 0.85
        out.append(img)
    return out


def _chip_for(run: RunInputs, row: pd.Series, geom_run: shapely.Geometry) -> figures.Chip:
    gsd = float(run.meta.get("parameters", {}).get("gsd_m") or 1.0)
    x0, y0, x1, y1 = geom_run.bounds
    if geom_run.geom_type == "Point":
        size = 120.0
        cx, cy = geom_run.x, geom_run.y
    else:
        size = float(np.clip(max(x1 - x0, y1 - y0) * 1.15, 150.0, 400.0))
        mid = (
            geom_run.interpolate(0.5, normalized=True)
            if size >= 400.0
            else geom_run.envelope.centroid
        )
        cx, cy = mid.x, mid.y
    res = max(gsd, size / _CHIP_MAX_PX)
    bounds = (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
    inputs = run.meta.get("inputs", {}) or {}
    before, after = _stretch_pair(
        read_chip(inputs.get("before", []), run.run_dir, crs=run.crs, bounds=bounds, res_m=res),
        read_chip(inputs.get("after", []), run.run_dir, crs=run.crs, bounds=bounds, res_m=res),
    )
    px = shapely.transform(
        geom_run,
        lambda xy: np.column_stack([(xy[:, 0] - bounds[0]) / res, (bounds[3] - xy[:, 1]) / res]),
    )
    caption = (
        f"{row['class']} {row['id']} · {row['status']} · score {_fmt(_float(row.get('score')), 2)}"
        f" · km {_fmt(_float(row.get('km')), 3)} · {size:.0f} m wide"
    )
    return figures.Chip(before=before, after=after, geometry_px=px, caption=caption, size_m=size)


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


# ---------------------------------------------------------------------- outputs
@dataclass(frozen=True, slots=True)
class ReportFiles:
    """The files :func:`build_report` wrote, and the headline it computed."""

    html: Path
    md: Path
    coverage_csv: Path
    segments_geojson: Path
    figures: tuple[Path, ...]
    headline: Headline


@dataclass(frozen=True, slots=True)
class _Figure:
    name: str
    title: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def build_report(run_dir: Path) -> ReportFiles:
    """Recompute the statistics of a finished run and write its report.

    Parameters
    ----------
    run_dir : Path
        A run folder written by ``bordewatch detect``.

    Returns
    -------
    ReportFiles

    Raises
    ------
    RunFolderError
        A required file is missing or unreadable.
    """
    run = read_run(Path(run_dir))
    try:
        segments = rollup_per_km(run.detections, run.tiles, run.border, run.km_range, side=run.side)
    except BordewatchError as err:
        raise RunFolderError(f"{run.run_dir}: cannot roll up the detections ({err})") from err
    areas = per_area(segments, hrw_areas() if run.uses_default_border else None)
    head = headline(segments, run.detections, run.border, run.km_range, side=run.side)
    out = run.run_dir
    outputs.write_csv(segments[list(SEGMENT_COLUMNS)], out / "coverage.csv")
    outputs.write_geojson(segments, out / "segments.geojson")
    if (out / "bordewatch.gpkg").exists():  # QGIS users read the per-km figures there too
        outputs.replace_gpkg_layer(out / "bordewatch.gpkg", "segments", segments, crs=run.crs)
    figs, chips, chip_notes = _make_figures(run, segments)
    fig_paths = _write_figures(out / "figures", [*figs, *chips])
    context = _context(run, segments, areas, head, figs, chips, chip_notes)
    atomic_write_text(out / "report.html", _render_html(context))
    atomic_write_text(out / "report.md", _render_md(context))
    return ReportFiles(
        html=out / "report.html",
        md=out / "report.md",
        coverage_csv=out / "coverage.csv",
        segments_geojson=out / "segments.geojson",
        figures=fig_paths,
        headline=head,
    )


def _make_figures(
    run: RunInputs, segments: gpd.GeoDataFrame
) -> tuple[list[_Figure], list[_Figure], list[str]]:
    name = f"{run.border.name}, km {run.km_range[0]:g}–{run.km_range[1]:g}"
    strip = figures.strip_chart(segments, title=f"Along the border: {name}")
    line = run.border.line_in(run.crs, run.km_range)
    overview = figures.overview_map(
        line, run.tiles, run.detections, crs=run.crs, title=f"Overview: {name}"
    )
    figs = [
        _Figure("strip_chart", "Strip chart along the border chainage", figures.png_bytes(strip)),
        _Figure(
            "overview_map",
            "Overview map: tiles by analysed fraction, detections by class and status",
            figures.png_bytes(overview),
        ),
    ]
    chips: list[_Figure] = []
    notes: list[str] = []
    det_run = run.detections.to_crs(run.crs) if len(run.detections) else run.detections
    for cls in _CLASSES:
        top = _strongest(run.detections, cls, _CHIPS_PER_CLASS)
        for i, (idx, row) in enumerate(top.iterrows()):
            chip = _chip_for(run, row, det_run.geometry.loc[idx])
            if chip.before is None and chip.after is None:
                notes.append(f"{cls} {row['id']}: no input imagery readable under it")
                continue
            png = figures.png_bytes(
                figures.chip_figure(
                    chip, colour=figures.STATUS_COLOURS.get(str(row["status"]), "#ffd400")
                )
            )
            chips.append(_Figure(f"chip_{cls}_{i + 1}", chip.caption, png))
    return figs, chips, notes


def _write_figures(folder: Path, figs: Iterable[_Figure]) -> tuple[Path, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fig in figs:
        path = folder / f"{fig.name}.png"
        atomic_write_bytes(path, fig.png)
        paths.append(path)
    for stale in sorted(folder.glob("chip_*.png")):
        if stale not in paths:
            stale.unlink()
    return tuple(paths)


# ---------------------------------------------------------------------- report context
def _context(
    run: RunInputs,
    segments: gpd.GeoDataFrame,
    areas: pd.DataFrame,
    head: Headline,
    figs: list[_Figure],
    chips: list[_Figure],
    chip_notes: list[str],
) -> dict[str, Any]:
    per_km = format_segments(segments, percent=True).to_dict("records")
    return {
        "title": f"bordewatch report — {run.border.name}, km {run.km_range[0]:g}–{run.km_range[1]:g}",
        "headline": head.lines(),
        "figures": figs,
        "chips": chips,
        "chip_notes": chip_notes,
        "areas": _area_rows(areas),
        "area_source": "HRW 2024 study areas (approximate km ranges on the default line)"
        if run.uses_default_border
        else "",
        "per_km": per_km,
        "per_km_header": list(zip(SEGMENT_COLUMNS, _PER_KM_HEADER)),
        "provenance": _provenance(run),
        "inputs": _inputs(run),
        "parameters": [
            (str(k), json.dumps(v, sort_keys=True))
            for k, v in sorted((run.meta.get("parameters") or {}).items())
        ],
        "shifts": _shift_summary(run.tiles),
        "limitations": _limitations(run, segments, chip_notes),
    }


def _provenance(run: RunInputs) -> list[tuple[str, str]]:
    meta = run.meta
    info = meta.get("border", {}) or {}
    border_text = f"{run.border.name}: {run.border.length_km:,.1f} km long; source: {info.get('source', run.border.source)}"
    if run.uses_default_border:
        border_text += (
            f" — a generalised river-centre line; official figures give ~{_OFFICIAL_PRK_CHN_KM:,} km, so "
            "km and lengths along it are shorter than on the ground where the river meanders"
        )
    tiles = meta.get("tiles", {}) or {}
    return [
        ("software", f"bordewatch {meta.get('bordewatch_version', 'unknown')}"),
        ("run created", str(meta.get("created", "unknown"))),
        ("command", str(meta.get("command", ""))),
        ("border line", border_text),
        (
            "sides",
            f"left of the line: {run.border.left}; right: {run.border.right}; counted: {run.side}",
        ),
        (
            "km range",
            f"{run.km_range[0]:g}–{run.km_range[1]:g} ({run.km_range[1] - run.km_range[0]:,.2f} km)",
        ),
        ("run CRS", run.crs),
        ("detections read from", run.detections_source),
        (
            "tiles",
            f"{tiles.get('total', len(run.tiles))} planned, {tiles.get('done', 'n/a')} done, "
            f"{len(tiles.get('failed', []) or [])} failed, {len(tiles.get('skipped', []) or [])} skipped",
        ),
        (
            "timings",
            ", ".join(
                f"{k} {_fmt(_float(v), 1)} s" if isinstance(v, (int, float)) else f"{k} {v}"
                for k, v in sorted((meta.get("timings") or {}).items())
            ),
        ),
    ]


def _inputs(run: RunInputs) -> list[dict[str, str]]:
    rows = []
    for epoch in ("before", "after"):
        for entry in (run.meta.get("inputs", {}) or {}).get(epoch, []) or []:
            size = _float(entry.get("bytes"))
            rows.append(
                {
                    "epoch": epoch,
                    "path": str(entry.get("path", "")),
                    "date": str(entry.get("date") or entry.get("datetime") or "unknown"),
                    "size": "n/a" if math.isnan(size) else f"{size / 1e6:,.2f} MB",
                    "sha256": str(entry.get("sha256", "")),
                    "crs": str(entry.get("crs", "")),
                    "gsd_m": _fmt(_float(entry.get("gsd_m")), 2),
                    "bands": ", ".join(map(str, entry.get("bands", []) or [])),
                    "dtype": str(entry.get("dtype", "")),
                }
            )
    return rows


def _shift_summary(tiles: gpd.GeoDataFrame) -> dict[str, Any]:
    done = tiles[tiles["status"].astype(str).eq("done").to_numpy()] if "status" in tiles else tiles
    if not {"shift_row", "shift_col"} <= set(done.columns) or len(done) == 0:
        return {"text": "no co-registration shifts recorded", "rows": []}
    gsd = pd.to_numeric(
        done.get("gsd_m", pd.Series(np.nan, index=done.index)), errors="coerce"
    ).to_numpy(float)
    mag = np.hypot(done["shift_row"].to_numpy(float), done["shift_col"].to_numpy(float))
    quality = pd.to_numeric(
        done.get("shift_quality", pd.Series(np.nan, index=done.index)), errors="coerce"
    ).to_numpy(float)
    order = np.argsort(-mag, kind="stable")[:10]
    rows = [
        {
            "id": str(done["id"].iloc[i]) if "id" in done else str(i),
            "km": f"{done['km_start'].iloc[i]:.3f}–{done['km_end'].iloc[i]:.3f}",
            "shift": f"{done['shift_row'].iloc[i]:+.2f}, {done['shift_col'].iloc[i]:+.2f}",
            "shift_m": _fmt(mag[i] * gsd[i], 2),
            "quality": _fmt(quality[i], 2),
        }
        for i in order
    ]
    text = (
        f"after co-registered to before per tile (phase correlation): median shift {np.median(mag):.2f} px, "
        f"largest {mag.max():.2f} px over {len(done)} analysed tiles; "
        f"{int(np.sum(quality < 0.3))} tiles with shift quality below 0.3"
    )
    return {"text": text, "rows": rows}


def _runs_below(segments: pd.DataFrame, threshold: float) -> list[tuple[float, float, float]]:
    """Consecutive km rows with analysed < threshold: (km_start, km_end, mean analysed)."""
    low = segments["analysed"].to_numpy(float) < threshold
    runs: list[tuple[float, float, float]] = []
    i = 0
    while i < len(low):
        if not low[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(low) and low[j + 1]:
            j += 1
        part = segments.iloc[i : j + 1]
        w = (part["km_end"] - part["km_start"]).to_numpy(float)
        runs.append(
            (
                float(part["km_start"].iloc[0]),
                float(part["km_end"].iloc[-1]),
                float(np.average(part["analysed"], weights=w)),
            )
        )
        i = j + 1
    return runs


def _limitations(run: RunInputs, segments: pd.DataFrame, chip_notes: list[str]) -> list[str]:
    items = []
    runs = _runs_below(segments, 0.95)
    unanalysed = float(
        ((1 - segments["analysed"]) * (segments["km_end"] - segments["km_start"])).sum()
    )
    if runs:
        listed = "; ".join(f"km {a:g}–{b:g} ({100 * m:.0f} % analysed)" for a, b, m in runs[:30])
        more = f"; and {len(runs) - 30} more stretches" if len(runs) > 30 else ""
        items.append(
            f"{unanalysed:,.2f} km of border lack valid imagery for both dates (nodata, clouds, no "
            f"overlap or failed tiles) and are not counted as fenced or unfenced: {listed}{more}."
        )
    failed = (
        run.tiles[run.tiles["status"].astype(str).eq("failed").to_numpy()]
        if "status" in run.tiles
        else run.tiles.iloc[:0]
    )
    for _, t in failed.iterrows():
        items.append(
            f"Tile {t.get('id', '?')} (km {t['km_start']:g}–{t['km_end']:g}) failed: {t.get('error', '') or 'no reason recorded'}."
        )
    skipped = (run.meta.get("tiles", {}) or {}).get("skipped", []) or []
    if skipped:
        ids = [str(s.get("id", s)) if isinstance(s, dict) else str(s) for s in skipped]
        items.append(
            f"{len(ids)} tiles were skipped (no imagery of both dates): {', '.join(ids[:20])}."
        )
    items.extend(f"Evidence chip missing: {note}." for note in chip_notes)
    items.append(
        "Detections are automatic and unreviewed unless stated. On held-out test scenes the "
        "detectors miss many new fences and towers and also report some that are not there "
        "(benchmarks/ACCURACY.md in the bordewatch repository), so the totals here are neither "
        "upper nor lower bounds: check detections against the imagery (open bordewatch.gpkg in "
        "QGIS), delete false positives from its detections layer or from detections.geojson, and "
        "run `bordewatch report --run DIR` to recompute every number here."
    )
    items.append(
        "Existing watchtowers are not inventoried (the detector also takes trees and huts that "
        "cast shadows in both dates for towers): the 'before' tower count holds only towers found "
        "removed, and the 'after' count only new ones."
    )
    items.append(
        "Fenced shares are of the analysed border length; a fence counts alongside the km of border "
        "nearest to it, on "
        + ("both sides of the line." if run.side == "both" else f"the {run.side} side only.")
    )
    return items


# ---------------------------------------------------------------------- rendering
def _render_html(context: dict[str, Any]) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bordewatch", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("report.html.j2").render(**context)


def _md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _render_md(c: dict[str, Any]) -> str:
    out = [f"# {c['title']}", "", "## Headline", ""]
    out += [f"- {line}" for line in c["headline"]] + [""]
    out += [f"![{f.title}](figures/{f.name}.png)" for f in c["figures"]] + [""]
    out += ["## Per area", ""]
    if c["area_source"]:
        out += [c["area_source"], ""]
    out += _md_table(
        [
            "area",
            "km",
            "border km",
            "analysed km (%)",
            "fenced before km (%)",
            "fenced after km (%)",
            "new fence km",
            "upgraded fence km",
            "new/widened lanes km",
            "watchtowers before → after (+new)",
        ],
        [
            [
                r[k]
                for k in (
                    "area",
                    "km",
                    "border_km",
                    "analysed",
                    "fenced_before",
                    "fenced_after",
                    "new_fence_km",
                    "upgraded_fence_km",
                    "new_patrol_lane_km",
                    "towers",
                )
            ]
            for r in c["areas"]
        ],
    )
    out += [
        "## Per kilometre",
        "",
        "Fractions in %; the same rows are in coverage.csv and segments.geojson.",
        "",
    ]
    out += _md_table(list(_PER_KM_HEADER), [[r[k] for k in SEGMENT_COLUMNS] for r in c["per_km"]])
    out += ["## Evidence", ""]
    out += [f"![{f.title}](figures/{f.name}.png)" for f in c["chips"]] or [
        "No evidence chips (no detections or no readable imagery)."
    ]
    out += ["", "## Methods and provenance", ""]
    out += [f"- **{k}**: {_md_cell(v)}" for k, v in c["provenance"]] + [""]
    out += _md_table(
        ["epoch", "path", "date", "size", "sha256", "CRS", "GSD m", "bands", "dtype"],
        [list(r.values()) for r in c["inputs"]],
    )
    out += _md_table(["parameter", "value"], c["parameters"])
    out += [f"Co-registration: {c['shifts']['text']}", ""]
    out += ["## Limitations", ""] + [f"- {_md_cell(item)}" for item in c["limitations"]]
    return "\n".join(out) + "\n"


_PER_KM_HEADER = (
    "km start",
    "km end",
    "analysed %",
    "fenced before %",
    "fenced after %",
    "new fence m",
    "upgraded fence m",
    "new/widened lane m",
    "watchtowers before",
    "watchtowers after",
    "new watchtowers",
)
