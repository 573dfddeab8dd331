"""Deterministic, block-consistent value noise defined in world coordinates.

Every texture in a synthetic scene is a function of world position (metres), so any block of any
grid renders the same values where blocks overlap, and a misregistered epoch is just a shifted
grid. Lattice values come from an integer hash of (lattice x, lattice y, seed); interpolation is
smoothstep-bilinear. On a regular grid the interpolation is separable and done with two small
matrix products (fast); :func:`noise_points` evaluates the same function at scattered points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "fbm_grid",
    "fbm_points",
    "hash01",
    "noise_grid",
    "noise_points",
    "smoothstep",
    "upsample_linear",
]

F32 = npt.NDArray[np.float32]


def hash01(ix: npt.ArrayLike, iy: npt.ArrayLike, seed: int) -> F32:
    """Hash integer lattice coordinates (broadcast) to floats uniform in [0, 1).

    Examples
    --------
    >>> float(hash01(3, 4, 1)[()]) == float(hash01(3, 4, 1)[()])
    True
    """
    x = np.asarray(ix).astype(np.uint32, casting="unsafe")
    y = np.asarray(iy).astype(np.uint32, casting="unsafe")
    s = np.uint32((seed * 0x9E3779B1) & 0xFFFFFFFF)
    with np.errstate(over="ignore"):
        h = (np.atleast_1d(x) * np.uint32(0x27D4EB2D)) ^ (y * np.uint32(0x165667B1)) ^ s
        h ^= h >> np.uint32(15)
        h *= np.uint32(0x2C1B3C6D)
        h ^= h >> np.uint32(12)
        h *= np.uint32(0x297A2D39)
        h ^= h >> np.uint32(15)
    out = (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)
    return out.reshape(np.broadcast_shapes(np.shape(ix), np.shape(iy)))


def smoothstep(t: npt.ArrayLike) -> F32:
    """Cubic smoothstep of ``t`` clipped to [0, 1]."""
    t = np.clip(np.asarray(t, dtype=np.float32), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _weights(coord: npt.NDArray[np.float64], cell: float) -> tuple[F32, int]:
    """Interpolation matrix (n, m) from m lattice nodes to n positions along one axis."""
    u = coord / cell
    i0 = np.floor(u).astype(np.int64)
    s = smoothstep(u - i0)
    lo = int(i0.min())
    m = int(i0.max()) - lo + 2
    w = np.zeros((len(coord), m), dtype=np.float32)
    rows = np.arange(len(coord))
    w[rows, i0 - lo] = 1.0 - s
    w[rows, i0 - lo + 1] += s
    return w, lo


def _axis(
    coord: npt.NDArray[np.float64], cell: float
) -> tuple[npt.NDArray[np.int64], F32, int, int]:
    u = coord / cell
    i0 = np.floor(u).astype(np.int64)
    s = smoothstep(u - i0)
    lo = int(i0.min())
    return i0 - lo, s, lo, int(i0.max()) - lo + 2


def noise_grid(
    xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64], cell: float, seed: int
) -> F32:
    """Value noise in [0, 1] on the grid ``ys`` (rows) × ``xs`` (cols) of world coordinates."""
    ix, sx, x0, mx = _axis(xs, cell)
    iy, sy, y0, my = _axis(ys, cell)
    lat = hash01(np.arange(x0, x0 + mx)[None, :], np.arange(y0, y0 + my)[:, None], seed)
    if mx * 8 < len(xs):  # coarse lattice: matrix products are cheapest
        wx, _ = _weights(xs, cell)
        wy, _ = _weights(ys, cell)
        return (wy @ (lat @ wx.T)).astype(np.float32)
    rows = lat[iy] * (1.0 - sy)[:, None]
    rows += lat[iy + 1] * sy[:, None]
    out = rows[:, ix] * (1.0 - sx)[None, :]
    out += rows[:, ix + 1] * sx[None, :]
    return out


def noise_points(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], cell: float, seed: int
) -> F32:
    """The same value noise as :func:`noise_grid`, at scattered points."""
    u, v = np.asarray(x) / cell, np.asarray(y) / cell
    i, j = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    su, sv = smoothstep(u - i), smoothstep(v - j)
    a, b = hash01(i, j, seed), hash01(i + 1, j, seed)
    c, d = hash01(i, j + 1, seed), hash01(i + 1, j + 1, seed)
    return ((a * (1 - su) + b * su) * (1 - sv) + (c * (1 - su) + d * su) * sv).astype(np.float32)


def upsample_linear(
    v: F32,
    cx: npt.NDArray[np.float64],
    cy: npt.NDArray[np.float64],
    xs: npt.NDArray[np.float64],
    ys: npt.NDArray[np.float64],
) -> F32:
    """Bilinear interpolation of ``v`` given on the grid ``cy`` × ``cx`` (monotonic) at ``ys`` × ``xs``."""

    def axis(
        c: npt.NDArray[np.float64], p: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.intp], F32]:
        flip = c[-1] < c[0]
        cc, pp = (-c, -p) if flip else (c, p)
        i = np.clip(np.searchsorted(cc, pp) - 1, 0, len(cc) - 2)
        f = np.clip((pp - cc[i]) / (cc[i + 1] - cc[i]), 0.0, 1.0).astype(np.float32)
        return i, f

    ix, fx = axis(cx, xs)
    iy, fy = axis(cy, ys)
    rows = v[iy] * (1.0 - fy)[:, None]
    rows += v[iy + 1] * fy[:, None]
    out = rows[:, ix] * (1.0 - fx)[None, :]
    out += rows[:, ix + 1] * fx[None, :]
    return out


def fbm_grid(
    xs: npt.NDArray[np.float64],
    ys: npt.NDArray[np.float64],
    cells: Sequence[float],
    seed: int,
    gain: float = 0.55,
) -> F32:
    """Fractal sum of value-noise octaves, normalised to mean ~0.5, range ~[0, 1].

    Octaves coarser than 24 pixels are evaluated on every 4th pixel and interpolated (the error
    is far below the noise's own amplitude); finer octaves are evaluated at every pixel.
    """
    step = abs(float(xs[1] - xs[0])) if len(xs) > 1 else 1.0
    amps = [gain**k for k in range(len(cells))]
    total = float(sum(amps))
    coarse = [k for k, c in enumerate(cells) if c >= 24 * step and len(xs) > 16 and len(ys) > 16]
    out = np.zeros((len(ys), len(xs)), dtype=np.float32)
    if coarse:
        cx = np.concatenate([xs[::4], xs[-1:]])
        cy = np.concatenate([ys[::4], ys[-1:]])
        low = np.zeros((len(cy), len(cx)), dtype=np.float32)
        for k in coarse:
            low += np.float32(amps[k]) * noise_grid(cx, cy, cells[k], seed * 131 + k)
        out += upsample_linear(low, cx, cy, xs, ys)
    for k, cell in enumerate(cells):
        if k not in coarse:
            out += np.float32(amps[k]) * noise_grid(xs, ys, cell, seed * 131 + k)
    out /= np.float32(total)
    return out


def fbm_points(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    cells: Sequence[float],
    seed: int,
    gain: float = 0.55,
) -> F32:
    """The same fractal noise as :func:`fbm_grid`, at scattered points."""
    out = np.zeros(np.shape(x), dtype=np.float32)
    amp, total = 1.0, 0.0
    for k, cell in enumerate(cells):
        out += np.float32(amp) * noise_points(x, y, cell, seed * 131 + k)
        total += amp
        amp *= gain
    return out / np.float32(total)
