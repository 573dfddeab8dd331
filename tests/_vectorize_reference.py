"""Frozen copy of the vectoriser as it was before the speed work (issue 7), for equivalence tests.

``tests/test_vectorize_fuzz.py`` checks that :mod:`bordewatch.vectorize` gives exactly the same
polylines and samples as these functions. Do not edit: this is the reference.
"""
# ruff: noqa

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import shapely
from scipy import ndimage
from scipy.spatial import cKDTree
from shapely.geometry import LineString, Point
from skimage.morphology import skeletonize

_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def trace_skeleton(skel: npt.NDArray[np.bool_]) -> list[npt.NDArray[np.float64]]:
    """Trace a one-pixel-wide skeleton into paths between end points and junctions.

    Parameters
    ----------
    skel : ndarray of bool, shape (row, col)
        A skeleton (e.g. from ``skimage.morphology.skeletonize``).

    Returns
    -------
    list of ndarray of float64, shape (n, 2)
        Each path as ``(x=col, y=row)`` vertices, n >= 2. Junction pixels end paths (and are
        shared by the paths meeting there; steps between the pixels of one junction cluster
        are dropped); closed loops are returned once, closed.

    Examples
    --------
    >>> m = np.zeros((5, 7), bool); m[2, 1:6] = True
    >>> [p.tolist() for p in trace_skeleton(m)]
    [[[1.0, 2.0], [2.0, 2.0], [3.0, 2.0], [4.0, 2.0], [5.0, 2.0]]]
    """
    skel = np.ascontiguousarray(skel, dtype=bool)
    _rows, cols = skel.shape
    padded = np.pad(skel, 1)
    deg = ndimage.convolve(padded.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant")
    deg = (deg - 1) * padded  # neighbours of each skeleton pixel
    width = cols + 2
    flat = padded.ravel()
    degf = deg.ravel()
    nbr = np.array([dr * width + dc for dr, dc in _OFFSETS], dtype=np.int64)
    pix = np.flatnonzero(flat)
    node = set(pix[degf[pix] != 2].tolist())
    visited_edges: set[tuple[int, int]] = set()
    paths: list[list[int]] = []

    def walk(start: int, nxt: int) -> list[int]:
        path = [start, nxt]
        visited_edges.add((start, nxt))
        visited_edges.add((nxt, start))
        prev, cur = start, nxt
        while cur not in node:
            step = None
            for n in (cur + nbr).tolist():
                if flat[n] and n != prev and (cur, n) not in visited_edges:
                    # prefer 4-connected steps so diagonal shortcuts are not taken twice
                    if step is None or abs(n - cur) in (1, width):
                        step = n
            if step is None:
                break
            visited_edges.add((cur, step))
            visited_edges.add((step, cur))
            path.append(step)
            prev, cur = cur, step
            if cur == start:
                break
        return path

    for start in sorted(node):
        for n in (start + nbr).tolist():
            # node-to-node steps inside a junction cluster are not paths
            if flat[n] and n not in node and (start, n) not in visited_edges:
                paths.append(walk(start, n))
    # closed loops without any node
    seen = np.zeros(flat.size, bool)
    for p in paths:
        seen[p] = True
    for start in pix[~seen[pix]].tolist():
        if seen[start] or start in node:
            continue
        for n in (start + nbr).tolist():
            if flat[n] and (start, n) not in visited_edges:
                path = walk(start, n)
                seen[path] = True
                paths.append(path)
                break
    out = []
    for p in paths:
        if len(p) < 2:
            continue
        arr = np.asarray(p, dtype=np.int64)
        out.append(np.column_stack([arr % width - 1, arr // width - 1]).astype(np.float64))
    return out


def _direction(coords: npt.NDArray[np.float64], at_end: bool, reach: float) -> np.ndarray:
    """Unit vector pointing outwards from one end of a polyline, fitted over ``reach`` px."""
    pts = coords[::-1] if at_end else coords
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    k = int(np.searchsorted(cum, reach))
    k = min(max(k, 1), len(pts) - 1)
    v = pts[0] - pts[k]
    n = float(np.hypot(*v))
    return v / n if n > 0 else np.zeros(2)


def _end_table(
    coords: list[npt.NDArray[np.float64]],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Positions and outward directions of both ends of every polyline (end 2i, 2i+1)."""
    pos = np.empty((2 * len(coords), 2))
    dirs = np.empty((2 * len(coords), 2))
    for i, c in enumerate(coords):
        reach = min(10.0, 0.5 * float(np.linalg.norm(np.diff(c, axis=0), axis=1).sum()))
        pos[2 * i], pos[2 * i + 1] = c[0], c[-1]
        dirs[2 * i] = _direction(c, False, reach)
        dirs[2 * i + 1] = _direction(c, True, reach)
    return pos, dirs


def _chains(links: dict[int, int], n: int) -> list[list[int]]:
    """Ordered chains of line indices (sign-coded orientation) from end-to-end links."""
    seen = [False] * n
    chains: list[list[int]] = []
    starts = [i for i in range(n) if (2 * i not in links) or (2 * i + 1 not in links)]
    for i in starts + list(range(n)):
        if seen[i]:
            continue
        # enter at the free end: walk from end 2i if it is free, else from 2i+1 (reversed)
        free = 2 * i if 2 * i not in links else 2 * i + 1
        chain, end = [], free
        while True:
            k = end // 2
            if seen[k]:
                break
            seen[k] = True
            forward = end % 2 == 0
            chain.append(k if forward else -(k + 1))
            far = end + 1 if forward else end - 1
            if far not in links:
                break
            end = links[far]
        chains.append(chain)
    return chains


def bridge_gaps(
    lines: Sequence[LineString], *, max_gap_px: float, max_angle_deg: float = 25.0
) -> list[LineString]:
    """Join polylines whose ends face each other across a short, aligned gap.

    Parameters
    ----------
    lines : sequence of LineString
        Pixel-coordinate polylines.
    max_gap_px : float
        Largest gap bridged.
    max_angle_deg : float
        Both ends' directions and the gap's direction must agree within this angle.

    Returns
    -------
    list of LineString
        Greedy, deterministic joins (closest compatible pairs first).

    Examples
    --------
    >>> a = LineString([(0, 0), (10, 0)]); b = LineString([(14, 0), (30, 0)])
    >>> [round(l.length) for l in bridge_gaps([a, b], max_gap_px=5)]
    [30]
    """
    coords = [np.asarray(ln.coords, dtype=np.float64) for ln in lines if ln.length > 0]
    if len(coords) < 2:
        return [LineString(c) for c in coords]
    pos, dirs = _end_table(coords)
    pairs = np.array(sorted(cKDTree(pos).query_pairs(max_gap_px)), dtype=np.int64).reshape(-1, 2)
    pairs = pairs[pairs[:, 0] // 2 != pairs[:, 1] // 2]
    gap = pos[pairs[:, 1]] - pos[pairs[:, 0]]
    dist = np.hypot(gap[:, 0], gap[:, 1])
    unit = gap / np.maximum(dist, 1e-9)[:, None]
    da, db = dirs[pairs[:, 0]], dirs[pairs[:, 1]]
    cos_max = math.cos(math.radians(max_angle_deg))
    ok = (np.sum(da * db, axis=1) <= -cos_max) & (
        (dist < 1.0)
        | ((np.sum(da * unit, axis=1) >= cos_max) & (np.sum(db * unit, axis=1) <= -cos_max))
    )
    pairs, dist = pairs[ok], dist[ok]
    parent = list(range(len(coords)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    links: dict[int, int] = {}
    for a, b in pairs[np.lexsort((pairs[:, 1], pairs[:, 0], dist))].tolist():
        if a in links or b in links or root(a // 2) == root(b // 2):
            continue
        links[a], links[b] = b, a
        parent[root(a // 2)] = root(b // 2)
    out = []
    for chain in _chains(links, len(coords)):
        parts = [coords[k] if k >= 0 else coords[-k - 1][::-1] for k in chain]
        out.append(LineString(np.vstack(parts)))
    return out


def mask_to_polylines(
    mask: npt.NDArray[np.bool_],
    *,
    min_length_px: float,
    simplify_px: float = 1.0,
    max_gap_px: float = 0.0,
    min_piece_px: float = 3.0,
) -> list[LineString]:
    """Turn a thin-structure mask into simplified polylines in pixel coordinates.

    Parameters
    ----------
    mask : ndarray of bool, shape (row, col)
    min_length_px : float
        Polylines shorter than this (after bridging) are dropped.
    simplify_px : float
        Douglas–Peucker tolerance.
    max_gap_px : float
        Aligned gaps up to this are bridged (0: no bridging).
    min_piece_px : float
        Skeleton branches shorter than this are dropped before bridging (spurs).

    Returns
    -------
    list of LineString
        Sorted by (min x, min y) for determinism.
    """
    if not mask.any():
        return []
    paths = trace_skeleton(skeletonize(mask))
    lines = [LineString(p) for p in paths]
    lines = [ln for ln in lines if ln.length >= min_piece_px]
    if max_gap_px > 0 and len(lines) > 1:
        lines = bridge_gaps(lines, max_gap_px=max_gap_px)
    lines = [shapely.simplify(ln, simplify_px) for ln in lines]
    lines = [ln for ln in lines if ln.length >= min_length_px]
    return sorted(lines, key=lambda ln: (ln.bounds[0], ln.bounds[1], ln.length))


def blob_centroids(
    mask: npt.NDArray[np.bool_], weights: npt.NDArray[np.float32] | None = None
) -> list[Point]:
    """Centre of each 8-connected blob of ``mask`` (weighted by ``weights`` if given), pixel coords."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        return []
    w = np.ones(mask.shape, np.float32) if weights is None else weights
    idx = np.arange(1, n + 1)
    cen = ndimage.center_of_mass(w, labels, idx)
    return [Point(c, r) for r, c in cen]


def sample_along(
    line: LineString,
    image: npt.NDArray[np.floating],
    *,
    step_px: float = 1.0,
    radius: int = 0,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Sample ``image`` every ``step_px`` along a pixel-coordinate line.

    Each sample is the maximum of the ``(2 radius + 1)``-pixel square around the nearest pixel
    (``radius=0``: the pixel itself), which tolerates small misregistration.

    Returns
    -------
    distances, values : ndarray of float64

    Examples
    --------
    >>> img = np.zeros((5, 5)); img[2, 3] = 1.0
    >>> sample_along(LineString([(0, 2), (4, 2)]), img)[1].tolist()
    [0.0, 0.0, 0.0, 1.0, 0.0]
    """
    n = max(2, math.ceil(line.length / step_px) + 1)
    d = np.linspace(0.0, line.length, n)
    pts = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
    c = np.rint(pts[:, 0]).astype(int)
    r = np.rint(pts[:, 1]).astype(int)
    k = np.arange(-radius, radius + 1)
    rr = np.clip(r[:, None, None] + k[None, :, None], 0, image.shape[0] - 1)
    cc = np.clip(c[:, None, None] + k[None, None, :], 0, image.shape[1] - 1)
    vals = image[rr, cc].reshape(n, -1).max(axis=1)
    return d, vals.astype(np.float64)
