"""Matplotlib figures of a run: strip chart along the chainage, overview map, evidence chips.

Pure plotting: every function takes plain values (GeoDataFrames, arrays) and returns a
``matplotlib.figure.Figure`` made without pyplot (no global state, any backend); :func:`png_bytes`
renders one to PNG deterministically (no software/date metadata), so identical runs give
identical files. No web tiles, no network.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

__all__ = [
    "STATUS_COLOURS",
    "Chip",
    "chip_figure",
    "overview_map",
    "png_bytes",
    "strip_chart",
]

STATUS_COLOURS: dict[str, str] = {
    "new": "#d62728",
    "upgraded": "#ff7f0e",
    "existing": "#555555",
    "removed": "#1f77b4",
}
_CLASS_STYLE: dict[str, dict[str, object]] = {
    "fence": {"linestyle": "-", "linewidth": 1.6},
    "patrol_lane": {"linestyle": (0, (4, 2)), "linewidth": 1.2},
}
_DPI = 110


def png_bytes(fig: Figure, *, dpi: int = _DPI) -> bytes:
    """Render ``fig`` to PNG bytes without metadata that varies between runs."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
    return buf.getvalue()


# ---------------------------------------------------------------------- strip chart
def strip_chart(segments: gpd.GeoDataFrame, *, title: str = "") -> Figure:
    """Four stacked panels along the border chainage, one bar per km row.

    Panels: analysed fraction; fenced share before vs after; watchtowers per km before / after
    (new ones as bars); new and upgraded fence and new patrol lanes, metres per km.

    Parameters
    ----------
    segments : GeoDataFrame
        Per-km rows (:func:`bordewatch.rollup.rollup_per_km`).
    title : str
    """
    edges = np.concatenate(
        [segments["km_start"].to_numpy(float), segments["km_end"].to_numpy(float)[-1:]]
    )
    fig = Figure(figsize=(10, 7.5), layout="constrained")
    axes = fig.subplots(4, 1, sharex=True)

    def col(name: str) -> npt.NDArray[np.float64]:
        return segments[name].to_numpy(float)

    ax = axes[0]
    ax.stairs(100 * col("analysed"), edges, fill=True, color="#9ecae1", label="analysed")
    ax.set_ylim(0, 105)
    ax.set_ylabel("analysed\n(% of km)")
    ax = axes[1]
    ax.stairs(100 * col("fenced_before"), edges, color="#555555", linewidth=1.5, label="before")
    ax.stairs(100 * col("fenced_after"), edges, color="#d62728", linewidth=1.5, label="after")
    ax.set_ylim(0, 105)
    ax.set_ylabel("fenced\n(% of km)")
    ax.legend(loc="upper right", fontsize=8, ncols=2)
    ax = axes[2]
    ax.stairs(col("new_watchtowers"), edges, fill=True, color="#fcae91", label="new")
    ax.stairs(col("watchtowers_before"), edges, color="#555555", linewidth=1.5, label="before")
    ax.stairs(col("watchtowers_after"), edges, color="#d62728", linewidth=1.5, label="after")
    ax.set_ylabel("posts\nper km")
    ax.legend(loc="upper right", fontsize=8, ncols=3)
    ax = axes[3]
    new, upg = col("new_fence_m"), col("upgraded_fence_m")
    ax.stairs(new, edges, fill=True, color="#d62728", alpha=0.8, label="new fence")
    ax.stairs(
        new + upg,
        edges,
        baseline=new,
        fill=True,
        color="#ff7f0e",
        alpha=0.8,
        label="upgraded fence",
    )
    ax.stairs(
        col("new_patrol_lane_m"), edges, color="#2ca02c", linewidth=1.3, label="new/widened lane"
    )
    ax.set_ylabel("metres\nper km")
    ax.set_xlabel("border chainage (km from the line's start)")
    ax.legend(loc="upper right", fontsize=8, ncols=3)
    for a in axes:
        a.grid(axis="y", color="#dddddd", linewidth=0.6)
        a.set_xlim(edges[0], edges[-1])
        a.set_ylim(bottom=0)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# ---------------------------------------------------------------------- overview map
def overview_map(
    border_line: shapely.LineString,
    tiles: gpd.GeoDataFrame,
    detections: gpd.GeoDataFrame,
    *,
    crs: str,
    title: str = "",
) -> Figure:
    """Map of the border, the tiles coloured by analysed fraction and the detections.

    Parameters
    ----------
    border_line : shapely.LineString
        The run's stretch of border in ``crs``.
    tiles : GeoDataFrame
        Tile cores with ``analysed_fraction`` and ``status``; reprojected to ``crs``.
    detections : GeoDataFrame
        ``class``, ``status`` and geometry; reprojected to ``crs``.
    crs : str
        The metric CRS to draw in (the run CRS); axes are in its metres.
    """
    fig = Figure(figsize=(10, 7), layout="constrained")
    ax = fig.subplots()
    norm = Normalize(0.0, 1.0)
    if len(tiles):
        t = tiles.to_crs(crs)
        failed = (
            t["status"].astype(str).ne("done").to_numpy()
            if "status" in t
            else np.zeros(len(t), bool)
        )
        t.plot(
            ax=ax,
            column="analysed_fraction",
            cmap="Blues",
            norm=norm,
            alpha=0.55,
            edgecolor="#8899aa",
            linewidth=0.4,
        )
        if failed.any():
            t[failed].plot(ax=ax, facecolor="none", edgecolor="#b2182b", hatch="///", linewidth=0.8)
        sm = _scalar_mappable(norm)
        fig.colorbar(sm, ax=ax, shrink=0.6, label="analysed fraction of tile")
    ax.plot(*np.asarray(border_line.coords).T, color="black", linewidth=1.2, zorder=3)
    _draw_detections(ax, detections.to_crs(crs) if len(detections) else detections)
    ax.set_aspect("equal")
    ax.set_xlabel(f"easting, m ({crs})")
    ax.set_ylabel("northing, m")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(labelsize=7)
    ax.legend(handles=_legend_handles(), loc="best", fontsize=7, framealpha=0.85)
    if title:
        ax.set_title(title, fontsize=11)
    return fig


def _scalar_mappable(norm: Normalize) -> object:
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap="Blues")


def _draw_detections(ax: object, det: gpd.GeoDataFrame) -> None:
    if len(det) == 0:
        return
    for status, colour in STATUS_COLOURS.items():
        sel = det[det["status"].astype(str).eq(status).to_numpy()]
        for cls, style in _CLASS_STYLE.items():
            lines = sel[sel["class"].astype(str).eq(cls).to_numpy()]
            for geom in lines.geometry:
                for part in shapely.get_parts(geom):
                    xy = np.asarray(part.coords)
                    ax.plot(xy[:, 0], xy[:, 1], color=colour, zorder=4, **style)  # type: ignore[attr-defined]
        pts = sel[sel["class"].astype(str).eq("watchtower").to_numpy()]
        if len(pts):
            xy = shapely.get_coordinates(pts.geometry.values)
            ax.scatter(
                xy[:, 0],
                xy[:, 1],
                marker="^",
                s=22,
                color=colour,
                edgecolor="black",
                linewidth=0.4,
                zorder=5,
            )  # type: ignore[attr-defined]


def _legend_handles() -> list[Line2D]:
    handles = [Line2D([], [], color="black", linewidth=1.2, label="border")]
    handles += [
        Line2D([], [], color=c, linewidth=1.6, label=f"fence, {s}")
        for s, c in STATUS_COLOURS.items()
    ]
    handles.append(
        Line2D(
            [], [], color="#777777", linestyle=(0, (4, 2)), label="patrol lane (colour = status)"
        )
    )
    handles.append(
        Line2D(
            [],
            [],
            color="#777777",
            marker="^",
            linestyle="none",
            markeredgecolor="black",
            label="watchtower (colour = status)",
        )
    )
    return handles


# ---------------------------------------------------------------------- evidence chips
@dataclass(frozen=True, slots=True)
class Chip:
    """Before/after image windows around one detection, on one pixel grid.

    Attributes
    ----------
    before, after : ndarray of float32, shape (row, col, 3), or None
        Display-ready RGB 0–1 (``None`` where that epoch has no imagery there).
    geometry_px : shapely geometry
        The detection in chip pixel coordinates (x = col, y = row).
    caption : str
    size_m : float
        Chip width on the ground, metres.
    """

    before: npt.NDArray[np.float32] | None
    after: npt.NDArray[np.float32] | None
    geometry_px: shapely.Geometry
    caption: str
    size_m: float


def chip_figure(chip: Chip, *, colour: str = "#ffd400") -> Figure:
    """Draw a chip: before and after side by side, the detection outlined on both."""
    fig = Figure(figsize=(6.4, 3.5), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, img, label in ((axes[0], chip.before, "before"), (axes[1], chip.after, "after")):
        if img is None:
            ax.text(0.5, 0.5, "no imagery", ha="center", va="center", transform=ax.transAxes)
            ax.set_facecolor("#eeeeee")
        else:
            ax.imshow(img, interpolation="nearest")
            _draw_px(ax, chip.geometry_px, colour)
            ax.set_xlim(-0.5, img.shape[1] - 0.5)
            ax.set_ylim(img.shape[0] - 0.5, -0.5)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(chip.caption, fontsize=8.5)
    return fig


def _draw_px(ax: object, geom: shapely.Geometry, colour: str) -> None:
    for part in shapely.get_parts(geom):
        if part.geom_type == "Point":
            ax.scatter([part.x], [part.y], s=260, facecolor="none", edgecolor=colour, linewidth=1.4)  # type: ignore[attr-defined]
        else:
            xy = np.asarray(part.coords)
            ax.plot(
                xy[:, 0], xy[:, 1], color=colour, linewidth=1.0, alpha=0.75, linestyle=(0, (3, 2))
            )  # type: ignore[attr-defined]
