"""Shared per-epoch evidence: cheap separable Gaussian-derivative filters computed once.

Everything here is float32 numpy/scipy; no I/O, no CRS. Responses are scale-normalised and divided
by a robust estimate of the epoch's background level at that scale, so thresholds read as "how
many background deviations" and do not move with gain or offset of the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from bordewatch.detect import gaussian

__all__ = [
    "EpochEvidence",
    "LaneEvidence",
    "LineEvidence",
    "Scales",
    "block_mean",
    "compute_evidence",
    "lane_evidence",
    "line_evidence",
    "line_peaks",
    "max_filter",
    "neighbour_steps",
    "oriented_energy",
    "scales_for_gsd",
    "to_gray",
]

F32 = npt.NDArray[np.float32]
FENCE_STEPS = 4
"""Fence evidence is integrated along 2**FENCE_STEPS working (~1 m) pixels."""
N_ORIENT = 12
"""Directions of the oriented fence filter."""
_VISIBLE = ("red", "green", "blue", "coastal", "yellow", "pan")


@dataclass(frozen=True, slots=True)
class Scales:
    """Filter scales in pixels for one ground sampling distance.

    Attributes
    ----------
    fence_px : float
        Gaussian sigma matched to 0.5–2 m wide fences and walls.
    lane_px : float
        Sigma matched to 2–8 m wide patrol lanes.
    tower_px : float
        Sigma matched to 2–8 m tower roofs (the lane scale: one Hessian serves both).
    gsd_m : float
    fence_length_px : float
        Length over which fence evidence is integrated along its direction.
    coarse_factor : int
        Block size of the ~1 m working grid (1 at 0.75 m and coarser).
    fence_steps : int
        Fence evidence is averaged along its direction over ``2**fence_steps`` working pixels.
    """

    fence_px: float
    lane_px: float
    tower_px: float
    gsd_m: float
    fence_length_px: float = 16.0
    coarse_factor: int = 1
    fence_steps: int = 5


def scales_for_gsd(gsd_m: float) -> Scales:
    """Filter scales for a pixel size.

    Examples
    --------
    >>> scales_for_gsd(1.0).fence_px
    0.7
    """
    fence = float(np.clip(0.5 / gsd_m, 0.7, 3.0))
    lanes = float(max(2.0 / gsd_m, 1.5 * fence))
    factor = max(1, round(1.0 / gsd_m))
    length = float(np.clip(16.0 / gsd_m, 8.0, 32.0))
    steps = FENCE_STEPS
    return Scales(fence, lanes, lanes, gsd_m, length, factor, steps)


def to_gray(image: F32, bands: tuple[str, ...]) -> F32:
    """Mean of the visible bands (all bands if none is named visible), float32 (row, col)."""
    idx = [i for i, b in enumerate(bands) if b.lower() in _VISIBLE] or list(range(image.shape[0]))
    # summed band by band in the order np.mean uses (same bits), without a copy of the bands
    gray = np.array(image[idx[0]], np.float32)
    for i in idx[1:]:
        gray += image[i]
    gray /= np.float32(len(idx))
    return gray


@dataclass(frozen=True, slots=True)
class EpochEvidence:
    """Per-pixel evidence of one epoch (all float32 (row, col), >= 0 unless said otherwise).

    Attributes
    ----------
    gray : ndarray
        Brightness used by the detectors (invalid pixels filled).
    fence : ndarray
        Thin-line strength (bright or dark), edge- and blob-suppressed, in background units.
    fence_sign : ndarray of int8
        +1 bright line (wall, concrete), -1 dark line (wire, post shadows), 0 none.
    lane : ndarray
        Wide bright-strip strength (2–8 m), in background units.
    blob : ndarray
        Compact-object strength at the tower scale (bright or dark), in background units.
    blob_sign : ndarray of int8
    valid : ndarray of bool
        Where the evidence is trustworthy (valid pixels away from invalid edges).
    linear : ndarray
        Strongest line or strip response before the two are told apart (rejects blob-like
        corners and ends of roads and lanes).
    """

    gray: F32
    fence: F32
    fence_sign: npt.NDArray[np.int8]
    lane: F32
    blob: F32
    blob_sign: npt.NDArray[np.int8]
    valid: npt.NDArray[np.bool_]
    linear: F32


def _derivatives(
    gray: F32, sigma: float, *, gradient: bool, magnitude: bool = True, block: int = 1
) -> dict[str, F32]:
    """Scale-normalised Gaussian derivatives, sharing the separable row passes.

    Keys ``rr``, ``cc``, ``rc`` (Hessian times sigma^2) and, with ``gradient``, ``gr``, ``gc``
    (gradient times sigma) and, unless ``magnitude`` is False, ``grad`` (its magnitude).
    Results are scaled in place: no full-size temporaries beyond the three row passes.

    ``block > 1`` gives the maps averaged over ``block`` x ``block`` blocks (edge-padded): the
    column-direction passes commute with summing blocks of rows, so each is block-summed over
    rows first and the row-direction passes run on arrays ``block`` times smaller (the same
    maps as ``block_mean`` of the full-resolution ones up to float32 rounding, for about 60 %
    of the work at 0.5 m).
    """
    kw = {"mode": "nearest", "truncate": 3.0}

    def cols(src: F32, order: int, scale: float) -> F32:
        y = ndimage.gaussian_filter1d(src, sigma, axis=1, order=order, **kw)
        if block > 1:
            y = _block_sum(y, block, -1)
        y *= np.float32(scale / (block * block))
        return y

    if block == 1:
        r0, r1, r2 = gaussian.gaussian_filter1d(gray, sigma, axis=0, orders=(0, 1, 2), **kw)
    else:  # one order at a time, each block-summed at once: one full-size pass alive
        r0, r1, r2 = (
            _block_sum(
                gaussian.gaussian_filter1d(gray, sigma, axis=0, orders=(o,), **kw)[0], block, -2
            )
            for o in (0, 1, 2)
        )
    s1, s2 = float(sigma), float(sigma * sigma)
    out = {}
    for key, src, order, scale in (("rr", r2, 0, s2), ("cc", r0, 2, s2), ("rc", r1, 1, s2)):
        out[key] = cols(src, order, scale)
    del r2
    if gradient:
        out["gr"] = cols(r1, 0, s1)
        out["gc"] = cols(r0, 1, s1)
        if magnitude:
            out["grad"] = np.hypot(out["gr"], out["gc"])
    return out


def _eroded(valid: npt.NDArray[np.bool_], margin: int) -> npt.NDArray[np.bool_]:
    """``valid`` shrunk by ``margin`` pixels (4-connected steps); the outside counts as valid.

    A wholly valid tile (common where the imagery covers it and no cloud is masked) comes
    back as a copy, without ``margin`` erosion passes over it.
    """
    if margin <= 0:
        return valid
    if valid.all():
        return valid.copy()
    return ndimage.binary_erosion(valid, iterations=margin, border_value=1)


def max_filter(x: F32, radius: int) -> F32:
    """Square maximum filter of half-width ``radius`` (edges replicated), by shifted maxima.

    Much faster than ``scipy.ndimage.maximum_filter`` for the small radii used here.

    Examples
    --------
    >>> max_filter(np.eye(3, dtype=np.float32), 1).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    if radius <= 0:
        return x.copy()
    out = x
    for axis in (0, 1):
        n = out.shape[axis]
        pad = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        acc = pad[(slice(0, n), slice(None)) if axis == 0 else (slice(None), slice(0, n))].copy()
        for k in range(1, 2 * radius + 1):
            sl = slice(k, k + n)
            np.maximum(acc, pad[(sl, slice(None)) if axis == 0 else (slice(None), sl)], out=acc)
        out = acc
    return out


def _eig(hrr: F32, hcc: F32, hrc: F32) -> tuple[F32, F32]:
    """Eigenvalues (larger, smaller) of the symmetric 2x2 Hessian field."""
    half_tr = 0.5 * (hrr + hcc)
    disc = np.sqrt(0.25 * (hrr - hcc) ** 2 + hrc * hrc)
    return half_tr + disc, half_tr - disc


def _robust_scale(x: F32, valid: npt.NDArray[np.bool_]) -> float:
    """Robust spread of a response over valid pixels (1.4826 MAD, subsampled, floored)."""
    v = x[::4, ::4][valid[::4, ::4]]
    if v.size < 16:
        return 1.0
    med = float(np.median(v))
    mad = float(np.median(np.abs(v - med))) * 1.4826
    return max(mad, 1e-4)


def _robust_stats(x: F32, valid: npt.NDArray[np.bool_]) -> tuple[np.float32, np.float32]:
    """Median and robust spread (1.4826 MAD, floored) of ``x`` over valid pixels (subsampled)."""
    v = x[::4, ::4][valid[::4, ::4]]
    if v.size < 16:
        return np.float32(0.0), np.float32(1.0)
    med = float(np.median(v))
    mad = max(float(np.median(np.abs(v - med))) * 1.4826, 1e-4)
    return np.float32(med), np.float32(mad)


def _line_response(
    gray: F32, sigma: float, valid: npt.NDArray[np.bool_], *, edge_k: float = 0.8
) -> tuple[F32, F32, float, F32, F32]:
    """Bright and dark line strength at ``sigma`` (>= 0), the background scale, eigenvalues.

    Blobs are suppressed by the second curvature, step edges by the strongest gradient within
    ``sigma`` (a line has none at its centre and only weak ones beside it), and the side lobes of
    a line by the opposite polarity's stronger response next to them.
    """
    d = _derivatives(gray, sigma, gradient=True)
    big, small = _eig(d["rr"], d["cc"], d["rc"])
    reach = max(1, round(sigma))
    grad = max_filter(d["grad"], reach)
    edge = np.float32(edge_k) * grad
    bright = np.maximum(-small - np.abs(big) - edge, 0)
    dark = np.maximum(big - np.abs(small) - edge, 0)
    bright, dark = _suppress_lobes(bright, dark, sigma)
    return bright, dark, _robust_scale(big - small, valid), big, small


def _shifted(x: F32, dr: int, dc: int) -> F32:
    """``out[r, c] = x[r + dr, c + dc]``, zero outside."""
    out = np.zeros_like(x)
    rows, cols = x.shape
    r0, r1 = max(0, -dr), min(rows, rows - dr)
    c0, c1 = max(0, -dc), min(cols, cols - dc)
    if r1 > r0 and c1 > c0:
        out[r0:r1, c0:c1] = x[r0 + dr : r1 + dr, c0 + dc : c1 + dc]
    return out


def _along(x: F32, tr: float, tc: float, n_steps: int) -> F32:
    """Mean of ``x`` over 2**n_steps pixels along direction (tr, tc), centred (doubling sums)."""
    bufs = (np.empty_like(x), np.empty_like(x))
    return _along_into(x, tr, tc, n_steps, bufs, np.empty_like(x))


def _shift_region(shape: tuple[int, ...], dr: int, dc: int) -> tuple[slice, slice, slice, slice]:
    """Slices ``(rows, cols)`` of ``out`` and ``(rows, cols)`` of ``x`` for ``x[r + dr, c + dc]``."""
    rows, cols = shape
    r0, r1 = max(0, -dr), min(rows, rows - dr)
    c0, c1 = max(0, -dc), min(cols, cols - dc)
    r1, c1 = max(r0, r1), max(c0, c1)
    return slice(r0, r1), slice(c0, c1), slice(r0 + dr, r1 + dr), slice(c0 + dc, c1 + dc)


def _copy_outside(dst: F32, src: F32, rs: slice, cs: slice) -> None:
    """``dst = src`` outside the rectangle ``(rs, cs)``."""
    dst[: rs.start] = src[: rs.start]
    dst[rs.stop :] = src[rs.stop :]
    dst[rs, : cs.start] = src[rs, : cs.start]
    dst[rs, cs.stop :] = src[rs, cs.stop :]


def _zero_outside(dst: F32, rs: slice, cs: slice) -> None:
    """``dst = 0`` outside the rectangle ``(rs, cs)``."""
    dst[: rs.start] = 0
    dst[rs.stop :] = 0
    dst[rs, : cs.start] = 0
    dst[rs, cs.stop :] = 0


def _along_into(x: F32, tr: float, tc: float, n_steps: int, bufs: tuple[F32, F32], out: F32) -> F32:
    """:func:`_along` into preallocated arrays (``bufs`` are scratch, ``out`` gets the result).

    The same float32 operations in the same order as the shifted-copy definition, so the result
    is identical; only the zero-filled temporaries are gone.
    """
    y = x
    for k in range(n_steps):
        s = 2**k
        dst = bufs[k % 2]
        rs, cs, rs2, cs2 = _shift_region(x.shape, round(s * tr), round(s * tc))
        np.add(y[rs, cs], y[rs2, cs2], out=dst[rs, cs])
        _copy_outside(dst, y, rs, cs)
        y = dst
    h = (2**n_steps - 1) / 2
    rs, cs, rs2, cs2 = _shift_region(x.shape, -round(h * tr), -round(h * tc))
    np.multiply(y[rs2, cs2], np.float32(1.0 / 2**n_steps), out=out[rs, cs])
    _zero_outside(out, rs, cs)
    return out


def _suppress_lobes(bright: F32, dark: F32, sigma: float) -> tuple[F32, F32]:
    """Drop the side lobes of a line: responses next to a stronger one of the other polarity."""
    lobe = max(1, round(2 * sigma))
    bright_n = max_filter(bright, lobe)
    dark_n = max_filter(dark, lobe)
    b = np.where(dark_n > bright, 0, np.maximum(bright, 0)).astype(np.float32)
    d = np.where(bright_n > dark, 0, np.maximum(dark, 0)).astype(np.float32)
    return b, d


def _blob_response(big: F32, small: F32, scale: float) -> F32:
    """Signed compact-object strength: both curvatures the same sign (bright +, dark -)."""
    # both curvatures of one sign and of similar size (a strip or a line end is not a blob)
    iso = np.minimum(np.abs(big), np.abs(small)) >= np.float32(0.4) * np.maximum(
        np.abs(big), np.abs(small)
    )
    bright = np.where(iso, np.minimum(-small, -big), 0)  # both negative
    dark = np.where(iso, np.minimum(big, small), 0)  # both positive
    signed = np.where(bright > 0, bright, np.where(dark > 0, -dark, 0)).astype(np.float32)
    return signed / np.float32(scale)


def _fill_invalid(gray: F32, valid: npt.NDArray[np.bool_]) -> F32:
    """Invalid pixels set to the valid median so filters do not ring at nodata edges."""
    if valid.all():
        return gray
    fill = float(np.median(gray[valid])) if valid.any() else 0.0
    return np.where(valid, gray, np.float32(fill)).astype(np.float32)


def _edge_strided(
    x: npt.NDArray[np.generic], i: int, j: int, fr: int, fc: int, m: int, k: int
) -> npt.NDArray[np.generic]:
    """``x[..., i::fr, j::fc]`` edge-extended to ``(m, k)`` in the last two axes.

    What ``np.pad(x, mode="edge")[..., i::fr, j::fc]`` gives, without copying the whole array
    (a view of ``x`` where nothing is to be extended).
    """
    s = x[..., i::fr, j::fc]
    if s.shape[-1] < k:
        s = np.concatenate([s, x[..., i::fr, -1:]], axis=-1)
    if s.shape[-2] < m:
        last = x[..., -1:, j::fc]
        if last.shape[-1] < k:
            last = np.concatenate([last, x[..., -1:, -1:]], axis=-1)
        s = np.concatenate([s, last], axis=-2)
    return s


def _block_sum(x: npt.NDArray[np.generic], f: int, axis: int) -> F32:
    """Sums over blocks of ``f`` rows (``axis=-2``) or columns (``axis=-1``), the last block
    edge-padded, float32; the slices are added in order, so sums agree bit for bit with the
    reshape sums of a padded copy."""
    m, k = x.shape[-2:]
    if axis == -2:
        m = -(-m // f)
        parts = [(i, 0, f, 1) for i in range(f)]
    else:
        k = -(-k // f)
        parts = [(0, j, 1, f) for j in range(f)]
    out = np.array(_edge_strided(x, *parts[0], m, k), np.float32)
    for part in parts[1:]:
        out += _edge_strided(x, *part, m, k)
    return out


def neighbour_steps(x: npt.NDArray[np.floating], valid: npt.NDArray[np.bool_]) -> npt.NDArray:
    """Absolute steps between neighbours that are both valid: along rows, then along columns.

    The texture measures of the tower and line tests (their median) use it on strided windows,
    so that neighbours are ~1 m apart whatever the pixel size.
    """
    return np.concatenate(
        [
            np.abs(np.diff(x, axis=0))[valid[1:] & valid[:-1]],
            np.abs(np.diff(x, axis=1))[valid[:, 1:] & valid[:, :-1]],
        ]
    )


def block_mean(x: npt.NDArray[np.generic], f: int) -> F32:
    """Mean over f x f blocks of the last two axes (edge-padded to a multiple of f), float32.

    Summed from strided slices, each block row's ``f`` columns in turn and then the rows: the
    float32 sums of ``reshape(...).mean(axis=(1, 3))`` bit for bit, without its slow reduction
    over two non-adjacent axes (and without padding copies of the whole array).
    """
    if x.dtype not in (np.float32, np.bool_):
        x = np.asarray(x, np.float32)  # float32 sums, as the reshape mean of a float32 copy
    out = _block_sum(_block_sum(x, f, -1), f, -2)
    out /= np.float32(f * f)
    return out


def _coarse(gray: F32, valid: npt.NDArray[np.bool_], scales: Scales) -> tuple[F32, F32, F32, float]:
    """Bright-strip strength, Hessian eigenvalues and background scale at the lane/tower scale."""
    f = scales.coarse_factor
    if f == 1:
        lane_b, _, sc, big, small = _line_response(gray, scales.lane_px, valid, edge_k=0.5)
        return lane_b, big, small, sc
    small_valid = block_mean(valid.astype(np.float32), f) > 0.5
    lane_b, _, sc, big, small = _line_response(
        block_mean(gray, f), scales.lane_px / f, small_valid, edge_k=0.5
    )
    rows, cols = gray.shape

    def up(a: F32) -> F32:
        return np.repeat(np.repeat(a, f, axis=0), f, axis=1)[:rows, :cols]

    return up(lane_b), up(big), up(small), sc


def compute_evidence(
    image: F32, valid: npt.NDArray[np.bool_], bands: tuple[str, ...], scales: Scales
) -> EpochEvidence:
    """Compute the evidence of one epoch once, for all detectors.

    Parameters
    ----------
    image : ndarray of float32, shape (band, row, col)
    valid : ndarray of bool, shape (row, col)
    bands : tuple of str
    scales : Scales

    Returns
    -------
    EpochEvidence
    """
    gray = _fill_invalid(to_gray(image, bands), valid)
    fine_px = float(np.clip(1.0 / scales.gsd_m, 1.0, 3.0))
    bright, dark, _, _, _ = _line_response(gray, fine_px, valid)
    strength = np.maximum(bright, dark)
    fine_med, fine_scale = _robust_stats(strength, valid)
    lane_b, big, small, coarse_scale = _coarse(gray, valid, scales)
    # a strip as wide as a lane answers at least as strongly at the lane scale as at the fence scale
    is_fence = (dark > bright) | (lane_b < np.float32(0.8) * bright)
    # background-relative: the oriented maximum of texture is biased above zero
    z = np.maximum(strength - fine_med, 0) / fine_scale
    fine = np.where(bright >= dark, z, -z)
    fence_abs = np.where(is_fence, z, 0).astype(np.float32)
    # lanes are wide, strong strips: a thin fence hardly answers at the lane scale
    lane_abs = (lane_b / np.float32(coarse_scale)).astype(np.float32)
    linear = np.maximum(lane_b / np.float32(coarse_scale), np.abs(fine))
    blob = _blob_response(big, small, coarse_scale)
    margin = int(np.ceil(3 * scales.lane_px))
    good = _eroded(valid, margin)
    return EpochEvidence(
        gray=gray,
        fence=np.where(good, fence_abs, 0).astype(np.float32),
        fence_sign=np.sign(fine).astype(np.int8),
        lane=np.where(good, lane_abs, 0).astype(np.float32),
        blob=np.where(good, np.abs(blob), 0).astype(np.float32),
        blob_sign=np.sign(blob).astype(np.int8),
        linear=linear,
        valid=good,
    )


@dataclass(frozen=True, slots=True)
class LaneEvidence:
    """What the classical detector needs of one epoch on its own (float32 (row, col)).

    Attributes
    ----------
    gray : ndarray
        Brightness (invalid pixels filled), as in :class:`EpochEvidence`, full resolution.
    lane : ndarray
        Wide bright-strip strength (2–8 m) in background units on the working grid (``factor``
        full-resolution pixels per working pixel), 0 within three lane widths of invalid pixels.
        With ``factor == 1`` it equals ``EpochEvidence.lane``.
    factor : int
    """

    gray: F32
    lane: F32
    factor: int = 1


def lane_evidence(
    image: F32, valid: npt.NDArray[np.bool_], bands: tuple[str, ...], scales: Scales
) -> LaneEvidence:
    """The ``gray`` and ``lane`` maps of :func:`compute_evidence`, without the rest.

    The fine line, blob and sign maps of :class:`EpochEvidence` cost a full-resolution Hessian
    and seven full-resolution arrays per epoch that the classical pipeline does not use (fences
    come from :func:`line_evidence`, towers from :mod:`~bordewatch.detect.posts`): at 0.5 m that
    was about 350 MB held through the whole tile. Lanes are 2–8 m wide: on imagery finer than
    ~1 m their map stays on the ~1 m working grid where it is computed, so tracing and
    classifying them costs a quarter (0.5 m) of full-resolution work.
    """
    gray = _fill_invalid(to_gray(image, bands), valid)
    f = scales.coarse_factor
    if f == 1:
        lane_b, _, sc, _, _ = _line_response(gray, scales.lane_px, valid, edge_k=0.5)
        work_valid = valid
    else:
        valid_frac = block_mean(valid.astype(np.float32), f)
        lane_b, _, sc, _, _ = _line_response(
            block_mean(gray, f), scales.lane_px / f, valid_frac > 0.5, edge_k=0.5
        )
        work_valid = valid_frac > 0.99
    margin = int(np.ceil(3 * scales.lane_px / f))
    good = _eroded(work_valid, margin)
    lane = np.where(good, lane_b / np.float32(sc), 0).astype(np.float32)
    return LaneEvidence(gray=gray, lane=lane, factor=f)


# --- line evidence on both epochs and on their difference (fences, lanes) -----------------------


@dataclass(frozen=True, slots=True)
class LineEvidence:
    """Line evidence of the *after* and *before* epochs and of their difference, at working res.

    All maps are float32 at the working resolution (``factor`` full-resolution pixels per
    working pixel), in background-deviation units (>= 0).

    Attributes
    ----------
    fence_after, fence_before, fence_diff : ndarray
        Thin-line strength (either polarity), integrated along the best of 8 directions.
    fence_peak_after, fence_peak_diff : ndarray of bool
        Non-maximum suppression across the line: True on the ridge of a line only.
    valid : ndarray of bool
    factor : int
    """

    fence_after: F32
    fence_before: F32
    fence_diff: F32
    fence_peak_after: npt.NDArray[np.bool_]
    fence_peak_diff: npt.NDArray[np.bool_]
    valid: npt.NDArray[np.bool_]
    factor: int
    belt: BeltEvidence | None = None


def _standardised(gray: F32, valid: npt.NDArray[np.bool_]) -> F32:
    """``(gray - median) / MAD`` over valid pixels: epochs become comparable, gain/offset cancel."""
    med, mad = _robust_stats(gray, valid)
    return ((gray - med) / mad).astype(np.float32)


def _hessian_grad(gray: F32, sigma: float, block: int = 1) -> tuple[F32, F32, F32, F32, F32]:
    """Hessian and gradient maps ``rr, cc, rc, gr, gc`` (:func:`_derivatives`), averaged over
    ``block`` x ``block`` blocks (the ~1 m working grid) when ``block > 1``."""
    d = _derivatives(gray, sigma, gradient=True, magnitude=False, block=block)
    return d["rr"], d["cc"], d["rc"], d["gr"], d["gc"]


def oriented_energy(
    rr: F32,
    cc: F32,
    rc: F32,
    gr: F32,
    gc: F32,
    n_steps: int,
    *,
    n_orient: int = N_ORIENT,
    edge_k: float = 1.0,
) -> tuple[F32, npt.NDArray[np.int8]]:
    """Thin-line strength of either polarity, averaged along the best of ``n_orient`` directions.

    The second derivative across each direction is steered from the Hessian (three separable
    filters serve every direction) and averaged along the direction over ``2**n_steps`` pixels
    by doubling sums; a long thin straight line adds up, texture does not. The gradient across,
    averaged the same way, is subtracted: at the second-derivative peak of a step edge (field
    or road edge) the scale-normalised gradient equals it, at a line centre it is zero.

    Returns
    -------
    strength : ndarray of float32
        ``|mean across-curvature| - edge_k * |mean across-gradient|`` of the best direction.
    orient : ndarray of int8
        Index k of the best direction (line direction ``pi * k / n_orient``).
    """
    rows, cols = rr.shape
    # Row strips of the inputs, zero-padded by ``pad`` columns and flattened: every shift of the
    # doubling sums is one contiguous 1-D add. The padded filter on zeros equals the shifted-copy
    # definition (offsets along a direction share their signs, so a tap that leaves the image never
    # comes back), with the same float32 additions in the same order. Strips overlap by ``halo``
    # rows and keep the working set in cache.
    reach = 2**n_steps
    halo, pad = reach + 1, reach + 1
    width = cols + 2 * pad
    strip = max(32, (1 << 17) // width)
    n_buf = min(rows, strip + 2 * halo)
    src_p = [np.zeros((n_buf, width), np.float32) for _ in range(5)]
    work = [np.empty(n_buf * width, np.float32) for _ in range(6)]
    best = np.full((rows, width), -np.inf, np.float32)
    orient = np.zeros((rows, width), np.int8)
    better = np.empty(strip * width, bool)
    for a in range(0, rows, strip):
        b = min(rows, a + strip)
        lo, hi = max(0, a - halo), min(rows, b + halo)
        for dst, v in zip(src_p, (rr, cc, rc, gr, gc)):
            dst[: hi - lo, pad : pad + cols] = v[lo:hi]
        n = (hi - lo) * width
        _oriented_strip(
            tuple(x.reshape(-1)[:n] for x in src_p),
            width,
            pad,
            n_steps,
            n_orient,
            edge_k,
            [w[:n] for w in work],
            better[: (b - a) * width],
            (a - lo) * width,
            best[a:b].reshape(-1),
            orient[a:b].reshape(-1),
        )
    out = best[:, pad : pad + cols] * np.float32(1.0 / 2**n_steps)
    return out, np.ascontiguousarray(orient[:, pad : pad + cols])


def _flat_shift_add(y: F32, off: int, dst: F32) -> None:
    """``dst[i] = y[i] + y[i + off]`` (``y[i]`` where ``i + off`` is outside), 1-D."""
    n = y.size
    if off == 0:
        np.add(y, y, out=dst)
    elif abs(off) >= n:
        dst[:] = y
    elif off > 0:
        np.add(y[: n - off], y[off:], out=dst[: n - off])
        dst[n - off :] = y[n - off :]
    else:
        np.add(y[-off:], y[: n + off], out=dst[-off:])
        dst[:-off] = y[:-off]


def _along_sum_abs(
    x: F32,
    width: int,
    pad: int,
    tr: float,
    tc: float,
    n_steps: int,
    bufs: tuple[F32, F32],
    out: F32,
) -> None:
    """``|sum of x|`` over 2**n_steps pixels along (tr, tc), centred (flat rows of ``width``
    with ``pad`` zero columns either side)."""
    y = x
    for k in range(n_steps):
        s = 2**k
        dst = bufs[k % 2]
        _flat_shift_add(y, round(s * tr) * width + round(s * tc), dst)
        y = dst
    # the centring shift goes against the direction: sums centred outside the image are zero
    y2 = y.reshape(-1, width)
    y2[:, :pad] = 0
    y2[:, width - pad :] = 0
    h = (2**n_steps - 1) / 2
    off = -(round(h * tr) * width + round(h * tc))
    n = y.size
    if abs(off) >= n:
        out[:] = 0
    elif off >= 0:
        np.abs(y[off:], out=out[: n - off])
        out[n - off :] = 0
    else:
        np.abs(y[: n + off], out=out[-off:])
        out[:-off] = 0


def _oriented_strip(
    src: tuple[F32, F32, F32, F32, F32],
    width: int,
    pad: int,
    n_steps: int,
    n_orient: int,
    edge_k: float,
    work: list[F32],
    better: npt.NDArray[np.bool_],
    start: int,
    best: F32,
    orient: npt.NDArray[np.int8],
) -> None:
    """:func:`oriented_energy` (times ``2**n_steps``) of one flat padded strip into ``best``.

    ``best`` and ``orient`` take the strip's flat elements ``start : start + best.size``.
    """
    rr, cc, rc, gr, gc = src
    across, grad, tmp, u, b0, b1 = work
    bufs = (b0, b1)
    stop = start + best.size
    kbuf = np.empty(best.size, np.int8)
    for k in range(n_orient):
        th = np.pi * k / n_orient
        tr, tc = float(np.sin(th)), float(np.cos(th))
        nr, nc = tc, -tr
        np.multiply(rr, np.float32(nr * nr), out=across)
        np.multiply(rc, np.float32(2 * nr * nc), out=tmp)
        across += tmp
        np.multiply(cc, np.float32(nc * nc), out=tmp)
        across += tmp
        np.multiply(gr, np.float32(nr), out=grad)
        np.multiply(gc, np.float32(nc), out=tmp)
        grad += tmp
        # the 1 / 2**n_steps of the means is exact and order-preserving: applied once at the end
        _along_sum_abs(across, width, pad, tr, tc, n_steps, bufs, u)
        _along_sum_abs(grad, width, pad, tr, tc, n_steps, bufs, tmp)
        ub, tb = u[start:stop], tmp[start:stop]
        if edge_k != 1.0:
            tb *= np.float32(edge_k)
        ub -= tb
        # masked copies are slow: directions come in increasing k, so the index of the last
        # strict improvement is the largest k that improved; fmax keeps best where u is NaN
        np.greater(ub, best, out=better)
        np.fmax(best, ub, out=best)
        np.multiply(better.view(np.int8), np.int8(k), out=kbuf)
        np.maximum(orient, kbuf, out=orient)


def line_peaks(
    strength: F32, orient: npt.NDArray[np.int8], n_orient: int = N_ORIENT, radius: int = 2
) -> npt.NDArray[np.bool_]:
    """Non-maximum suppression across the line direction within ``radius`` pixels.

    Parallel lines more than ``radius`` pixels apart stay apart.
    """
    keep = np.zeros(strength.shape, bool)
    ge = np.empty(strength.shape, bool)
    for k in range(n_orient):
        th = np.pi * k / n_orient
        ok = orient == k
        # two pixels either side: the opposite-polarity side lobes of a thin line are not peaks
        for step in range(1, radius + 1):
            nr, nc = round(step * np.cos(th)), round(-step * np.sin(th))
            _and_not_below_shifted(ok, strength, nr, nc, ge)
            _and_not_below_shifted(ok, strength, -nr, -nc, ge)
        keep |= ok
    return keep


def _and_not_below_shifted(
    ok: npt.NDArray[np.bool_], x: F32, dr: int, dc: int, ge: npt.NDArray[np.bool_]
) -> None:
    """``ok &= x >= _shifted(x, dr, dc)`` without the shifted copy (``ge`` is scratch)."""
    rs, cs, rs2, cs2 = _shift_region(x.shape, dr, dc)
    np.greater_equal(x[rs, cs], x[rs2, cs2], out=ge[rs, cs])
    ok[rs, cs] &= ge[rs, cs]
    for sl in (
        (slice(None, rs.start),),
        (slice(rs.stop, None),),
        (rs, slice(None, cs.start)),
        (rs, slice(cs.stop, None)),
    ):
        ok[sl] &= x[sl] >= 0


def _to_units(x: F32, valid: npt.NDArray[np.bool_], floor: float = 0.0) -> F32:
    """Background-relative strength: (x - median) / max(MAD, floor) over valid pixels, >= 0."""
    med, mad = _robust_stats(x, valid)
    mad = np.float32(max(float(mad), floor))
    return np.where(valid, np.maximum(x - med, 0) / mad, 0).astype(np.float32)


def _epoch_line_maps(
    gray: F32, valid: npt.NDArray[np.bool_], sigma: float, f: int, f_belt: int
) -> tuple[tuple[F32, ...], F32]:
    """An epoch's fine Hessian and gradient on the working grid and its standardised
    brightness block-averaged to the belt grid (``f``, ``f_belt`` pixels per block)."""
    z = _standardised(gray, valid)
    h = _hessian_grad(z, sigma, f)
    return h, (block_mean(z, f_belt) if f_belt > 1 else z)


def line_evidence(
    before: F32,
    after: F32,
    valid: npt.NDArray[np.bool_],
    bands: tuple[str, ...],
    scales: Scales,
    *,
    grays: tuple[F32, F32] | None = None,
) -> LineEvidence:
    """Fence and lane evidence of both epochs and of their difference (see :class:`LineEvidence`).

    Each epoch's brightness is standardised by its own median and MAD, so the difference
    ``after - before`` cancels gain, offset and everything that did not change (roads, field
    edges, old fences), leaving faint new lines that the per-epoch maps lose in texture. The
    fine Hessian is computed once per epoch at full resolution (the difference's Hessian is the
    difference of the Hessians), then block-averaged to a ~1 m working grid where the oriented
    integration and non-maximum suppression run.
    """
    f = scales.coarse_factor
    if grays is None:
        grays = (
            _fill_invalid(to_gray(before, bands), valid),
            _fill_invalid(to_gray(after, bands), valid),
        )
    fb = belt_factor(scales.gsd_m)
    # one epoch's full-resolution standardised brightness at a time (at 0.5 m a 60 MB map per
    # tile), kept only as its fine Hessian and its block means on the belt grid
    hb, zb_belt = _epoch_line_maps(grays[0], valid, scales.fence_px, f, fb)
    ha, za_belt = _epoch_line_maps(grays[1], valid, scales.fence_px, f, fb)
    wvalid = block_mean(valid.astype(np.float32), f) > 0.99 if f > 1 else valid
    margin = int(np.ceil(3 * scales.lane_px / f)) + 1
    good = _eroded(wvalid, margin)
    n = scales.fence_steps
    ua, oa = oriented_energy(*ha, n)
    ub, _ = oriented_energy(*hb, n)
    for a, b in zip(ha, hb):  # the difference's Hessian, in place of the after epoch's
        np.subtract(a, b, out=a)
    del hb
    ud, od = oriented_energy(*ha, n)
    del ha
    # the difference's unit is floored at half the after epoch's, so that a quiet pair (little
    # but noise changed) does not blow its noise up to "lines"
    _, unit_a = _robust_stats(ua, good)
    ua, ub = _to_units(ua, good), _to_units(ub, good)
    ud = _to_units(ud, good, floor=0.5 * float(unit_a))
    belt = belt_evidence(za_belt, zb_belt, valid, scales.gsd_m)
    water = _resample_mask(belt.water, ud.shape)
    return LineEvidence(
        fence_after=ua,
        fence_before=ub,
        fence_diff=ud,
        fence_peak_after=line_peaks(ua, oa) & good,
        fence_peak_diff=line_peaks(ud, od) & good & ~water,
        valid=good,
        factor=f,
        belt=belt,
    )


def _resample_mask(mask: npt.NDArray[np.bool_], shape: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """Nearest-neighbour resampling of a mask to ``shape`` (grids sharing their origin corner)."""
    rows = np.minimum((np.arange(shape[0]) + 0.5) * mask.shape[0] / shape[0], mask.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) + 0.5) * mask.shape[1] / shape[1], mask.shape[1] - 1)
    return mask[rows.astype(int)[:, None], cols.astype(int)[None, :]]


# --- belt-scale band evidence (cleared belts along fences, new lanes) ----------------------------


@dataclass(frozen=True, slots=True)
class BeltEvidence:
    """Band evidence at cleared-belt width (3–8 m) on a coarse (~2 m) grid.

    Attributes
    ----------
    after, before, diff : ndarray
        Oriented band strength (either polarity) of each epoch and of ``after - before``, in
        background units (>= 0).
    peak_diff, peak_after : ndarray of bool
        Ridge of ``diff`` and of ``after`` (non-maximum suppression across the band).
    water : ndarray of bool
        Water or its changing banks (dark, smooth in either epoch, dilated): no new lines there.
    factor : int
        Full-resolution pixels per belt-grid pixel.
    """

    after: F32
    before: F32
    diff: F32
    peak_diff: npt.NDArray[np.bool_]
    water: npt.NDArray[np.bool_]
    factor: int
    peak_after: npt.NDArray[np.bool_] | None = None


BELT_SIGMA_M = 1.8
"""Gaussian sigma of the belt filter (a 5–7 m band: width / (2 sqrt 3))."""
BELT_GRID_M = 2.0
WATER_REACH_M = 12.0
"""Changes within this distance of water (either epoch) are taken as water-level change."""
BELT_STEPS = 4
"""Belt evidence is averaged along 2**BELT_STEPS belt-grid pixels (~32 m)."""


def _water(z: F32, sigma: float, min_px: float) -> npt.NDArray[np.bool_]:
    """Dark, very smooth areas of a standardised epoch (open water), small specks dropped."""
    m = gaussian.gaussian_filter(z, sigma, mode="reflect", truncate=4.0)
    v = gaussian.gaussian_filter(z * z, sigma, mode="reflect", truncate=4.0) - m * m
    w = (m < -0.3) & (v < 0.01)
    lab, n = ndimage.label(w)
    if n == 0:
        return w
    size = np.bincount(lab.ravel(), minlength=n + 1)
    keep = size >= min_px
    keep[0] = False
    return keep[lab]


def belt_factor(gsd_m: float) -> int:
    """Full-resolution pixels per belt-grid pixel (the ~2 m grid of :func:`belt_evidence`)."""
    return max(1, round(BELT_GRID_M / gsd_m))


def belt_evidence(
    za: F32, zb: F32, valid: npt.NDArray[np.bool_], gsd_m: float, *, n_orient: int = N_ORIENT
) -> BeltEvidence:
    """Oriented band evidence of both standardised epochs and their difference (belt scale).

    ``za`` and ``zb`` are the standardised epochs block-averaged to the ~2 m belt grid
    (:func:`belt_factor` pixels per block); ``valid`` and ``gsd_m`` are the tile's. The Hessian
    and gradient of each epoch are computed once on that grid; for every direction the
    across-curvature and across-gradient are averaged along the direction and the difference's
    responses are the differences of the epochs' (the filters are linear).
    """
    f = belt_factor(gsd_m)
    g = gsd_m * f
    if f > 1:
        wvalid = block_mean(valid.astype(np.float32), f) > 0.99
    else:
        wvalid = valid
    sigma = BELT_SIGMA_M / g
    ha = _hessian_grad(za, sigma)
    hb = _hessian_grad(zb, sigma)
    shape = za.shape
    best = [np.full(shape, -np.inf, np.float32) for _ in range(3)]
    orient = np.zeros(shape, np.int8)
    orient_a = np.zeros(shape, np.int8)
    n = BELT_STEPS
    for k in range(n_orient):
        th = np.pi * k / n_orient
        tr, tc = float(np.sin(th)), float(np.cos(th))
        nr, nc = tc, -tr
        w = (np.float32(nr * nr), np.float32(2 * nr * nc), np.float32(nc * nc))
        acr, grd = [], []
        for rr, cc, rc, gr, gc in (ha, hb):
            acr.append(_along(w[0] * rr + w[1] * rc + w[2] * cc, tr, tc, n))
            grd.append(_along(np.float32(nr) * gr + np.float32(nc) * gc, tr, tc, n))
        acr.append(acr[0] - acr[1])
        grd.append(grd[0] - grd[1])
        for i in range(3):
            u = np.abs(acr[i]) - np.abs(grd[i])
            if i != 1:
                # increasing k: the last strict improvement is the largest improving k
                better = u > best[i]
                o = orient if i == 2 else orient_a
                np.maximum(o, better.view(np.int8) * np.int8(k), out=o)
            np.fmax(best[i], u, out=best[i])
    margin = int(np.ceil(3 * sigma)) + 2
    good = _eroded(wvalid, margin)
    ws = 3.0 / g
    water = _water(za, ws, 400 / g**2) | _water(zb, ws, 400 / g**2)
    water = ndimage.binary_dilation(water, iterations=max(1, round(WATER_REACH_M / g)))
    ua, ub = _to_units(best[0], good), _to_units(best[1], good)
    _, unit_a = _robust_stats(best[0], good)
    ud = _to_units(best[2], good, floor=0.5 * float(unit_a))
    return BeltEvidence(
        after=ua,
        before=ub,
        diff=ud,
        peak_diff=line_peaks(ud, orient, n_orient) & good & ~water,
        water=water,
        factor=f,
        peak_after=line_peaks(ua, orient_a, n_orient) & good & ~water,
    )
