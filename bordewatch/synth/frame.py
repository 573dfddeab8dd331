"""The river frame: chainage ``s`` along a smoothed border line and signed offset ``n`` from it.

Geography and infrastructure are laid out in (s, n): the river centre is ``n = c(s)``, its half
width ``w(s)``, a fence ``n = c(s) ± (w(s) + setback + gap)``. Pixels are projected into the frame
on a coarse sub-grid and interpolated, which is exact where the frame is locally straight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Frame", "build_frame", "frame_sn", "frame_xy", "resample_line"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Frame:
    """A densely sampled smooth line: points ``xy`` (n, 2), chainage ``s`` (m), left normals."""

    xy: F64
    s: F64
    normal: F64

    @property
    def length_m(self) -> float:
        """Length of the frame line, metres."""
        return float(self.s[-1])


def resample_line(xy: F64, step_m: float) -> F64:
    """Resample a polyline at (nearly) equal spacing ``step_m``."""
    seg = np.hypot(*np.diff(xy, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(np.ceil(cum[-1] / step_m)) + 1)
    t = np.linspace(0.0, cum[-1], n)
    return np.column_stack([np.interp(t, cum, xy[:, 0]), np.interp(t, cum, xy[:, 1])])


def build_frame(
    xy: F64, *, step_m: float = 10.0, smooth_m: float = 600.0, extend_m: float = 0.0
) -> Frame:
    """Densify, extend at both ends by ``extend_m`` and smooth a line into a :class:`Frame`."""
    pts = resample_line(np.asarray(xy, dtype=np.float64), step_m)
    if extend_m > 0:
        d0 = pts[0] - pts[min(5, len(pts) - 1)]
        d1 = pts[-1] - pts[max(-6, -len(pts))]
        d0 /= np.hypot(*d0)
        d1 /= np.hypot(*d1)
        k = np.arange(int(extend_m / step_m), 0, -1)[:, None] * step_m
        pts = np.vstack([pts[0] + k * d0, pts, pts[-1] + k[::-1] * d1])
    half = max(1, int(smooth_m / step_m / 2))
    if len(pts) > 2 * half + 1:
        kernel = np.ones(2 * half + 1) / (2 * half + 1)
        padded = np.vstack([np.repeat(pts[:1], half, 0), pts, np.repeat(pts[-1:], half, 0)])
        pts = np.column_stack([np.convolve(padded[:, i], kernel, mode="valid") for i in range(2)])
    pts = resample_line(pts, step_m)
    seg = np.hypot(*np.diff(pts, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    tan = np.gradient(pts, axis=0)
    tan /= np.hypot(tan[:, 0], tan[:, 1])[:, None]
    normal = np.column_stack([-tan[:, 1], tan[:, 0]])
    return Frame(pts, s, normal)


def frame_xy(frame: Frame, s: npt.ArrayLike, n: npt.ArrayLike) -> F64:
    """World coordinates (k, 2) of frame positions ``(s, n)``."""
    s = np.asarray(s, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    px = np.interp(s, frame.s, frame.xy[:, 0])
    py = np.interp(s, frame.s, frame.xy[:, 1])
    nx = np.interp(s, frame.s, frame.normal[:, 0])
    ny = np.interp(s, frame.s, frame.normal[:, 1])
    norm = np.hypot(nx, ny)
    return np.column_stack([px + n * nx / norm, py + n * ny / norm])


def _project(frame: Frame, x: F64, y: F64) -> tuple[F64, F64]:
    """Exact projection of points onto the frame's segments (brute force over near segments)."""
    a = frame.xy[:-1]
    d = np.diff(frame.xy, axis=0)
    pad = 1500.0
    near = (
        (np.maximum(a[:, 0], a[:, 0] + d[:, 0]) > x.min() - pad)
        & (np.minimum(a[:, 0], a[:, 0] + d[:, 0]) < x.max() + pad)
        & (np.maximum(a[:, 1], a[:, 1] + d[:, 1]) > y.min() - pad)
        & (np.minimum(a[:, 1], a[:, 1] + d[:, 1]) < y.max() + pad)
    )
    idx = np.flatnonzero(near)
    if idx.size == 0:
        idx = np.arange(len(a))
    best_d2 = np.full(x.shape, np.inf)
    best_s = np.zeros(x.shape)
    best_n = np.zeros(x.shape)
    for chunk in np.array_split(idx, max(1, idx.size // 64)):
        ax, ay = a[chunk, 0][:, None], a[chunk, 1][:, None]
        dx, dy = d[chunk, 0][:, None], d[chunk, 1][:, None]
        l2 = dx * dx + dy * dy
        px, py = x[None, :] - ax, y[None, :] - ay
        t = np.clip((px * dx + py * dy) / l2, 0.0, 1.0)
        ex, ey = px - t * dx, py - t * dy
        d2 = ex * ex + ey * ey
        k = np.argmin(d2, axis=0)
        cols = np.arange(x.size)
        d2k = d2[k, cols]
        better = d2k < best_d2
        seg = chunk[k]
        sl = np.sqrt(l2[k, 0])
        cross = (dx[k, 0] * py[k, cols] - dy[k, 0] * px[k, cols]) / sl
        best_d2 = np.where(better, d2k, best_d2)
        best_s = np.where(better, frame.s[seg] + t[k, cols] * sl, best_s)
        best_n = np.where(better, cross, best_n)
    return best_s, best_n


def frame_sn(
    frame: Frame, xs: F64, ys: F64, *, coarse: int = 8
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Frame coordinates (s, n) of the grid ``ys`` (rows) × ``xs`` (cols), float32 (row, col)."""
    cx = np.concatenate([xs[::coarse], xs[-1:]])
    cy = np.concatenate([ys[::coarse], ys[-1:]])
    gx, gy = np.meshgrid(cx, cy)
    s, n = _project(frame, gx.ravel(), gy.ravel())
    s = s.reshape(gx.shape)
    n = n.reshape(gx.shape)
    return _bilinear(s, cx, cy, xs, ys), _bilinear(n, cx, cy, xs, ys)


def _bilinear(v: F64, cx: F64, cy: F64, xs: F64, ys: F64) -> npt.NDArray[np.float32]:
    from bordewatch.synth.noise import upsample_linear

    return upsample_linear(v.astype(np.float32), cx, cy, xs, ys)
