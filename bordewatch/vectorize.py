"""Per-tile masks to geometries: skeleton tracing, polylines, gap bridging, blob centres.

Pure functions: arrays in, shapely geometries out. Geometries are first built in *pixel*
coordinates (``x = col``, ``y = row``, pixel centres at integers) and moved to the tile CRS with
:func:`to_tile_crs`, which applies ``affine * (col + 0.5, row + 0.5)`` (the grid may be rotated).
Merging across tiles and writing files live elsewhere (``vectors.py``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
import shapely
from affine import Affine
from scipy import ndimage
from scipy.spatial import cKDTree
from shapely.geometry import LineString, MultiLineString, Point
from shapely.ops import substring
from skimage.morphology import skeletonize

__all__ = [
    "blob_centroids",
    "bridge_gaps",
    "mask_to_polylines",
    "merge_lines",
    "sample_along",
    "sample_along_all",
    "split_by_flags",
    "to_tile_crs",
    "trace_skeleton",
]

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

    Notes
    -----
    Pixels with other than two skeleton neighbours are *nodes*; the others form chains between
    nodes (or closed loops without any). A path is one chain with the nodes at its ends,
    listed from the end whose (node index, neighbour direction in ``_OFFSETS``) comes first,
    in that order; loops without nodes follow, from their first pixel (flat index). Chains are
    ordered without a walk per pixel: each chain pixel, entered from either neighbour, points
    to its successor, and pointer jumping (``log2`` of the longest chain rounds) gives every
    pixel its chain's far end and its distance to it.

    Examples
    --------
    >>> m = np.zeros((5, 7), bool); m[2, 1:6] = True
    >>> [p.tolist() for p in trace_skeleton(m)]
    [[[1.0, 2.0], [2.0, 2.0], [3.0, 2.0], [4.0, 2.0], [5.0, 2.0]]]
    """
    skel = np.ascontiguousarray(skel, dtype=bool)
    _rows, cols = skel.shape
    padded = np.pad(skel, 1)
    width = cols + 2
    flat = padded.ravel()
    nbr = np.array([dr * width + dc for dr, dc in _OFFSETS], dtype=np.int64)
    pix = np.flatnonzero(flat)
    if pix.size == 0:
        return []
    around = flat[pix[:, None] + nbr[None, :]]  # (n, 8): which neighbours are skeleton
    is_node = around.sum(axis=1) != 2
    node_flag = np.zeros(flat.size, bool)
    node_flag[pix[is_node]] = True
    # chain pixels and their two neighbours (first and last in _OFFSETS order)
    two = pix[~is_node]
    n_two = two.size
    if n_two == 0:
        return []
    ar2 = around[~is_node]
    ends = np.stack(
        [two + nbr[np.argmax(ar2, axis=1)], two + nbr[7 - np.argmax(ar2[:, ::-1], axis=1)]],
        axis=1,
    )  # (pixel, side)
    index = np.full(flat.size, -1, dtype=np.int64)
    index[two] = np.arange(n_two)
    # state 2 i + s: at chain pixel i, entered from its neighbour on side s, leaving by the
    # other side; its successor is the state of the pixel left to (-1 where that is a node)
    leave = ends[:, ::-1].ravel()  # the pixel each state moves to
    into = index[leave]
    nxt = np.where(into >= 0, 2 * into, -1)
    here = np.repeat(two, 2)
    nxt[into >= 0] += (ends[into[into >= 0], 0] != here[into >= 0]).astype(np.int64)
    # pointer jumping: root = the chain's last state, rank = steps from the state to it
    root = np.where(nxt >= 0, nxt, np.arange(2 * n_two))
    rank = (nxt >= 0).astype(np.int64)
    active = np.flatnonzero(nxt >= 0)
    for _ in range(int(2 * n_two).bit_length() + 1):
        if active.size == 0:
            break
        ahead = root[active]
        rank[active] += rank[ahead]
        root[active] = root[ahead]
        active = active[nxt[root[active]] >= 0]  # not yet at its chain's last state
    on_loop = np.zeros(2 * n_two, bool)
    on_loop[active] = True  # still jumping: a loop without nodes
    pieces: list[npt.NDArray[np.int64]] = []  # flat indices of the paths, end to end
    sizes: list[int] = []
    # entries: a chain pixel's side that touches a node, keyed (node, direction from it)
    side_node = node_flag[ends].ravel()  # per state: entered from a node
    entry = np.flatnonzero(side_node & ~on_loop)
    if entry.size:
        node_of = ends.ravel()[entry]
        j = _direction_index(here[entry] - node_of, nbr)
        key = node_of * 8 + j
        # the same chain entered from its other end: the reverse of its last state
        partner = root[entry] ^ 1
        key_of = np.full(2 * n_two, -1, dtype=np.int64)
        key_of[entry] = key
        first = key < key_of[partner]
        start, key = entry[first], key[first]
        order = np.argsort(key, kind="stable")
        start = start[order]
        # every state of the chosen directions, by path then from the entry on
        path_of = np.full(2 * n_two, -1, dtype=np.int64)
        path_of[root[start]] = np.arange(start.size)
        member = np.flatnonzero(path_of[root] >= 0)
        pid = path_of[root[member]]
        seq = np.lexsort((-rank[member], pid))
        member, pid = member[seq], pid[seq]
        lengths = rank[start] + 1
        last = root[start]
        term = leave[last]  # the node each path ends at
        # the flat indices of each path: its entry node, its chain pixels, its end node
        offsets = np.concatenate([[0], np.cumsum(lengths + 2)])
        flat_idx = np.empty(int(offsets[-1]), dtype=np.int64)
        flat_idx[offsets[:-1]] = node_of[first][order]
        flat_idx[offsets[1:] - 1] = term
        inner = np.ones(flat_idx.size, bool)
        inner[offsets[:-1]] = False
        inner[offsets[1:] - 1] = False
        flat_idx[inner] = here[member]
        pieces.append(flat_idx)
        sizes += (lengths + 2).tolist()
    if on_loop.any():
        loops = np.flatnonzero(on_loop[0::2] | on_loop[1::2])
        seen = np.zeros(n_two, bool)
        for i in loops.tolist():
            if seen[i]:
                continue
            first_px = int(two[i])
            path = [first_px]
            prev, cur = first_px, int(ends[i, 0])
            while True:
                path.append(cur)
                if cur == first_px:
                    break
                k = int(index[cur])
                seen[k] = True
                a = int(ends[k, 0])
                prev, cur = cur, (int(ends[k, 1]) if a == prev else a)
            seen[i] = True
            pieces.append(np.array(path, dtype=np.int64))
            sizes.append(len(path))
    if not sizes:
        return []
    flat_all = np.concatenate(pieces)
    xy = np.empty((flat_all.size, 2), dtype=np.float64)
    xy[:, 0] = flat_all % width - 1
    xy[:, 1] = flat_all // width - 1
    bounds = np.cumsum([0, *sizes]).tolist()
    return [xy[a:b] for a, b in itertools.pairwise(bounds)]  # views, as np.split gives


def _direction_index(
    step: npt.NDArray[np.int64], nbr: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Index in ``_OFFSETS`` of each flat-index step (``nbr``: the offsets' flat steps)."""
    order = np.argsort(nbr)
    return order[np.searchsorted(nbr[order], step)]


def _end_offset(coords: npt.NDArray[np.float64], at_end: bool, reach: float) -> tuple[float, float]:
    """``pts[0] - pts[k]`` for the first vertex ``k`` whose running length from the end (``at_end``
    or the start) reaches ``reach``, walking only as far as that needs.

    The running length is summed in the same order and with the same operations as
    ``np.cumsum`` of ``np.linalg.norm(np.diff(pts))``, so ``k`` is bit-for-bit the same.
    """
    n = len(coords)
    m = min(n, 32)
    while True:
        pts = (coords[n - m :][::-1] if at_end else coords[:m]).tolist()
        cum, k = 0.0, -1
        for i in range(m):
            if cum >= reach:
                k = i
                break
            if i + 1 < m:
                (xa, ya), (xb, yb) = pts[i], pts[i + 1]
                dx, dy = xb - xa, yb - ya
                cum += math.sqrt(dx * dx + dy * dy)
        if k < 0 and m < n:
            m = n
            continue
        k = min(max(k if k >= 0 else n, 1), n - 1)
        return pts[0][0] - pts[k][0], pts[0][1] - pts[k][1]


_END_SEGMENTS = 16
"""Segments from each end gathered at once for :func:`_end_table` (a reach of 10 px needs at
most 10 segments of skeleton steps, which are 1 or sqrt(2) px long)."""


def _end_table(
    coords: list[npt.NDArray[np.float64]],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Positions and outward directions of both ends of every polyline (end 2i, 2i+1).

    The direction of an end points from the vertex ``reach`` px inside the line (at most 10 px,
    at most half the line's length) to the end vertex: the first vertex whose running length
    from the end reaches ``reach``. The running lengths of the first ``_END_SEGMENTS`` segments
    from every end are summed at once, in the order :func:`_end_offset` sums them; where one
    comes within rounding of the reach, the line's length is summed as ``seg[a:b].sum()``
    (numpy's pairwise order, which the reach was always taken from), and a vertex farther in
    is found by :func:`_end_offset`: the result is bit-for-bit that of the per-line walk.
    """
    m = len(coords)
    pos = np.empty((2 * m, 2))
    vec = np.empty((2 * m, 2))
    if m == 0:
        return pos, vec
    allc = np.concatenate(coords)
    d = allc[1:] - allc[:-1]
    seg = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])  # as np.linalg.norm(..., axis=1)
    sizes = np.fromiter((len(c) for c in coords), dtype=np.int64, count=m)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    stops = starts + sizes - 1
    pos[0::2] = allc[starts]
    pos[1::2] = allc[stops]
    inner = seg.copy()
    inner[stops[:-1]] = 0.0  # the steps from one line to the next
    half = 0.5 * np.add.reduceat(inner, starts)
    n_seg = sizes - 1
    t = np.arange(_END_SEGMENTS)
    has = t[None, :] < n_seg[:, None]
    cums = []
    for at_end in (False, True):
        idx = (stops[:, None] - 1 - t) if at_end else (starts[:, None] + t)
        lengths = np.where(has, seg[np.clip(idx, 0, len(seg) - 1)], np.inf)
        cum = np.zeros((m, _END_SEGMENTS + 1))
        np.cumsum(lengths, axis=1, out=cum[:, 1:])
        cums.append(cum)
    reach = np.minimum(10.0, half)
    # where a running length or 10 px comes within rounding of the reach, the line's length
    # is summed as the per-line walk sums it
    tol = 1e-9 * np.maximum(reach, 1.0)
    unsure = np.abs(half - 10.0) <= tol
    for cum in cums:
        unsure |= (np.abs(cum - reach[:, None]) <= tol[:, None]).any(axis=1)
    for i in np.flatnonzero(unsure).tolist():
        reach[i] = min(10.0, 0.5 * float(seg[starts[i] : stops[i]].sum()))
    ks, walk = [], np.zeros(m, bool)
    for cum in cums:
        past = cum >= reach[:, None]
        walk |= ~past.any(axis=1)  # the vertex lies past the gathered segments
        ks.append(np.clip(np.argmax(past, axis=1), 1, n_seg))
    vec[0::2] = allc[starts] - allc[starts + ks[0]]
    vec[1::2] = allc[stops] - allc[stops - ks[1]]
    for i in np.flatnonzero(walk).tolist():
        r = min(10.0, 0.5 * float(seg[starts[i] : stops[i]].sum()))
        vec[2 * i] = _end_offset(coords[i], False, r)
        vec[2 * i + 1] = _end_offset(coords[i], True, r)
    norm = np.hypot(vec[:, 0], vec[:, 1])
    ok = norm > 0
    dirs = np.zeros_like(vec)
    dirs[ok] = vec[ok] / norm[ok, None]
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
    return [LineString(c) for c in _bridge(coords, max_gap_px, max_angle_deg)]


def _bridge(
    coords: list[npt.NDArray[np.float64]], max_gap_px: float, max_angle_deg: float
) -> list[npt.NDArray[np.float64]]:
    """:func:`bridge_gaps` on vertex arrays (each of positive length): the joined arrays."""
    if len(coords) < 2:
        return coords
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
        if len(chain) == 1 and chain[0] >= 0:
            out.append(coords[chain[0]])
            continue
        parts = [coords[k] if k >= 0 else coords[-k - 1][::-1] for k in chain]
        out.append(np.vstack(parts))
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
    if not paths:
        return []
    lines = _linestrings(paths)
    keep = shapely.length(lines) >= min_piece_px
    if max_gap_px > 0 and int(keep.sum()) > 1:
        kept = [np.asarray(p) for p, k in zip(paths, keep.tolist()) if k]
        lines = _linestrings(_bridge(kept, max_gap_px, 25.0))
    else:
        lines = lines[keep]
    if len(lines) == 0:
        return []
    lines = shapely.simplify(lines, simplify_px)
    length = shapely.length(lines)
    bounds = shapely.bounds(lines)
    order = sorted(
        np.flatnonzero(length >= min_length_px).tolist(),
        key=lambda i: (bounds[i, 0], bounds[i, 1], length[i]),
    )
    return [lines[i] for i in order]


def _linestrings(coords: list[npt.NDArray[np.float64]]) -> npt.NDArray[np.object_]:
    """An array of LineStrings from vertex arrays (one GEOS call)."""
    if not coords:
        return np.empty(0, dtype=object)
    sizes = np.fromiter((len(c) for c in coords), dtype=np.int64, count=len(coords))
    return shapely.linestrings(
        np.concatenate(coords), indices=np.repeat(np.arange(len(coords)), sizes)
    )


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
    d, (vals,) = sample_along_all(line, (image,), (radius,), step_px=step_px)
    return d, vals


def sample_along_all(
    line: LineString,
    images: Sequence[npt.NDArray[np.floating]],
    radii: Sequence[int],
    *,
    step_px: float = 1.0,
) -> tuple[npt.NDArray[np.float64], list[npt.NDArray[np.float64]]]:
    """:func:`sample_along` of several images (each with its own ``radius``) at the same points.

    The points along the line are interpolated once for all of them.
    """
    length = line.length
    n = max(2, math.ceil(length / step_px) + 1)
    d = np.linspace(0.0, length, n)
    pts = _interpolate(shapely.get_coordinates(line), d)
    c = np.rint(pts[:, 0]).astype(int)
    r = np.rint(pts[:, 1]).astype(int)
    out = []
    for image, radius in zip(images, radii, strict=True):
        k = np.arange(-radius, radius + 1)
        # np.minimum/np.maximum rather than np.clip: the same indices, less call overhead
        rr = np.minimum(np.maximum(r[:, None, None] + k[None, :, None], 0), image.shape[0] - 1)
        cc = np.minimum(np.maximum(c[:, None, None] + k[None, None, :], 0), image.shape[1] - 1)
        out.append(image[rr, cc].reshape(n, -1).max(axis=1).astype(np.float64))
    return d, out


def _interpolate(
    xy: npt.NDArray[np.float64], d: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Points at distances ``d`` along a polyline: ``shapely.line_interpolate_point``, vectorised.

    Follows GEOS (``LengthLocationMap.getLocation`` and ``LinearLocation.getCoordinate``)
    operation for operation: a point lies on the first segment whose running end length
    exceeds its distance (past the end: the last vertex), at fraction ``(d - start) / length``
    of it, ``p0 + (p1 - p0) * f`` (``p0`` for ``f <= 0``, ``p1`` for ``f >= 1``).
    """
    if len(xy) < 2:
        return np.repeat(xy[:1], len(d), axis=0)
    delta = xy[1:] - xy[:-1]
    seg = np.sqrt(delta[:, 0] * delta[:, 0] + delta[:, 1] * delta[:, 1])
    ends = np.cumsum(seg)  # sequential, as GEOS accumulates
    idx = np.searchsorted(ends, d, side="right")  # first segment with end > d
    out = np.repeat(xy[-1:], len(d), axis=0)
    inside = idx < len(seg)
    i = idx[inside]
    start = np.where(i > 0, ends[np.maximum(i - 1, 0)], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (d[inside] - start) / seg[i]
    p0, p1 = xy[i], xy[i + 1]
    pt = (p1 - p0) * frac[:, None] + p0
    pt = np.where((frac <= 0.0)[:, None], p0, pt)
    pt = np.where((frac >= 1.0)[:, None], p1, pt)
    out[inside] = pt
    return out


def split_by_flags(
    line: LineString, dist: npt.NDArray[np.float64], flags: npt.NDArray[np.int_]
) -> list[tuple[int, LineString]]:
    """Cut a line into runs of equal integer flag (flags sampled at ``dist`` along it)."""
    out: list[tuple[int, LineString]] = []
    if len(flags) == 0:
        return out
    cuts = np.flatnonzero(np.diff(flags)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(flags)]])
    for s, e in zip(starts.tolist(), ends.tolist()):
        d0 = 0.0 if s == 0 else 0.5 * (dist[s - 1] + dist[s])
        d1 = line.length if e == len(flags) else 0.5 * (dist[e - 1] + dist[e])
        piece = substring(line, d0, d1)
        if isinstance(piece, LineString) and piece.length > 0:
            out.append((int(flags[s]), piece))
    return out


def to_tile_crs(geom: shapely.Geometry, affine: Affine) -> shapely.Geometry:
    """Move a pixel-coordinate geometry (x=col, y=row, centres at integers) to the tile CRS."""
    a, b, c, d, e, f = affine.a, affine.b, affine.c, affine.d, affine.e, affine.f

    def tx(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        col = xy[:, 0] + 0.5
        row = xy[:, 1] + 0.5
        return np.column_stack([a * col + b * row + c, d * col + e * row + f])

    return shapely.transform(geom, tx)


def merge_lines(lines: Iterable[LineString]) -> LineString | MultiLineString:
    """One geometry from several line pieces (a LineString if there is one)."""
    parts = [ln for ln in lines if not ln.is_empty]
    return parts[0] if len(parts) == 1 else MultiLineString(parts)
