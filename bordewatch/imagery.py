"""Imagery epochs: open rasters of any CRS/resolution/bands/bit depth, read a tile's window.

OWNER: imagery helper (issue 4). :class:`TilePair` is a shared contract used by ``align.py``,
``detect/`` and ``pipeline.py``; extend it only by adding fields with defaults.

An :class:`Epoch` is a list of :class:`Source` descriptions (no open file handles, picklable):
CRS, grid, band mapping, scaling to 0–1 and the footprint of the *valid* data (from a low-res
read of the mask), indexed with a shapely ``STRtree`` so a tile opens only the files it touches.
:func:`read_pair` brings each touching file's window straight onto the tile grid (bilinear,
rotated grids allowed): where the tile-to-file pixel mapping is affine (same CRS, or another CRS
over a tile-sized area) it decodes just the file's blocks under the tile and resamples them in
one ``torch`` ``grid_sample`` pass (10-20x faster than GDAL's warper onto a rotated grid),
elsewhere it uses GDAL's warper. It mosaics the files (the first valid pixel in order wins),
scales to float32 0–1 and builds the validity mask (nodata, alpha, internal masks, zero
collars, NaN, user clouds and an automatic bright-and-flat haze flag).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
import sys
import types
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyproj
import rasterio
import rasterio.features
import shapely
from affine import Affine
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import RasterioError
from rasterio.warp import reproject
from rasterio.windows import Window
from scipy import ndimage

from bordewatch._typing import PathLikeStr
from bordewatch.atomic import atomic_write_text
from bordewatch.errors import ImageryError
from bordewatch.tiling import Tile, tile_footprint_lonlat

__all__ = [
    "Epoch",
    "Source",
    "TilePair",
    "common_bands",
    "epoch_footprint",
    "epoch_footprint_near",
    "epoch_gsd_m",
    "epoch_summary",
    "haze_mask",
    "load_clouds",
    "open_epoch",
    "read_epoch",
    "read_pair",
    "target_gsd_m",
]

log = logging.getLogger(__name__)

RGBN = ("red", "green", "blue", "nir")
SENTINEL2 = (
    "coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3",
    "nir", "nir08", "watervapour", "cirrus", "swir1", "swir2",
)  # fmt: skip
_COLOR_NAMES = {ColorInterp.red: "red", ColorInterp.green: "green", ColorInterp.blue: "blue"}
_DESCRIPTIONS = {
    "red": "red", "r": "red", "b4": "red", "b04": "red",
    "green": "green", "g": "green", "b3": "green", "b03": "green",
    "blue": "blue", "b": "blue", "b2": "blue", "b02": "blue",
    "nir": "nir", "n": "nir", "b8": "nir", "b08": "nir", "nir08": "nir",
}  # fmt: skip
_PROBE_PX = 512  # long side of the low-res read behind footprints and statistics
_FIT_GRID = 5  # tile points per side behind the affine tile -> source pixel fit
_MAX_RESIDUAL_PX = 0.05  # largest miss of that fit (source pixels) before GDAL's warper is used
_DECIMATE_ABOVE = 1.5  # source pixels per tile pixel above which sources are block-averaged
_MIN_WEIGHT = 0.5  # bilinear weight of valid neighbours that makes a tile pixel valid
_RESAMPLE_BLOCK_PX = 1 << 18  # output pixels per grid_sample call (whole rows)
# Source-window pixels of one reading buffer (float32 per band plus a weight: 200 MB with four
# bands). A tile whose window is bigger (a rotated 0.5 m tile's can be 30 Mpx) is read in
# chunks of whole tile rows, so a worker does not hold a window-sized buffer beside both epochs.
_READ_BUFFER_PX = 10_000_000
_READ_CHUNK_MIN_ROWS = 256


# ---------------------------------------------------------------------- contracts
@dataclass(frozen=True, slots=True)
class TilePair:
    """Before and after pixels of one tile on the tile grid, scaled to float32 0–1.

    Attributes
    ----------
    tile : Tile
    before, after : ndarray of float32, shape (band, row, col)
        Reflectance-like values 0–1 in the common bands, in the order of ``bands``.
    valid : ndarray of bool, shape (row, col)
        True where both epochs hold valid data (not nodata, not cloud) inside the tile grid.
    bands : tuple of str
        Band names, e.g. ``("red", "green", "blue", "nir")``.
    shift_px : tuple of float
        Co-registration shift (row, col) already applied to ``after``.
    shift_quality : float
        0–1 reliability of the shift (0: not estimated).
    """

    tile: Tile
    before: npt.NDArray[np.float32]
    after: npt.NDArray[np.float32]
    valid: npt.NDArray[np.bool_]
    bands: tuple[str, ...]
    shift_px: tuple[float, float] = (0.0, 0.0)
    shift_quality: float = 0.0

    def __post_init__(self) -> None:
        if self.before.ndim != 3 or self.before.shape != self.after.shape:
            raise ValueError(
                f"before {self.before.shape} and after {self.after.shape} must both be (band, row, col)"
            )
        if self.valid.shape != self.before.shape[1:]:
            raise ValueError(
                f"valid {self.valid.shape} must be (row, col) = {self.before.shape[1:]}"
            )
        if len(self.bands) != self.before.shape[0]:
            raise ValueError(f"{len(self.bands)} band names for {self.before.shape[0]} bands")

    @property
    def gsd_m(self) -> float:
        """Pixel size of the tile grid, metres."""
        return self.tile.gsd_m


@dataclass(frozen=True, slots=True)
class Source:
    """One raster file of an epoch: everything needed to read it later, no open handle.

    Attributes
    ----------
    path : str
    crs : str
        WKT of the file's CRS.
    transform : tuple of 6 floats
        The file's geotransform ``(a, b, c, d, e, f)``.
    width, height, count : int
    dtype : str
    nodata : float or None
    band_names : tuple of str
        Names of the mapped bands (``red``, ``green``, ...).
    band_indexes : tuple of int
        1-based band index in the file of each name in ``band_names``.
    mask : str
        How invalid pixels are marked: ``nodata``, ``alpha``, ``mask`` (internal/sidecar mask),
        ``zero`` (all bands 0: a collar) or ``nan``.
    alpha_index : int
        1-based alpha band (0: none).
    scale : float
        Divide raw values by this to get 0–1.
    scale_note : str
        How ``scale`` was chosen (recorded in run.json).
    footprint : shapely.Polygon or MultiPolygon
        Outline of the valid data in lon/lat (EPSG:4326), not the bounding box.
    gsd_m : float
        Native pixel size, metres.
    """

    path: str
    crs: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int
    count: int
    dtype: str
    nodata: float | None
    band_names: tuple[str, ...]
    band_indexes: tuple[int, ...]
    mask: str
    alpha_index: int
    scale: float
    scale_note: str
    footprint: shapely.Geometry
    gsd_m: float


@dataclass(frozen=True)
class Epoch:
    """One date's imagery: one or more sources, mosaicked in the given order on reading."""

    name: str
    sources: tuple[Source, ...]
    _tree: shapely.STRtree = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.sources:
            raise ImageryError(f"{self.name}: no imagery files given")
        tree = shapely.STRtree([s.footprint for s in self.sources])
        object.__setattr__(self, "_tree", tree)

    @property
    def paths(self) -> tuple[str, ...]:
        """The files, in mosaic order."""
        return tuple(s.path for s in self.sources)

    @property
    def band_names(self) -> tuple[str, ...]:
        """Bands present in every source, in the first source's order."""
        common = set.intersection(*(set(s.band_names) for s in self.sources))
        return tuple(b for b in self.sources[0].band_names if b in common)

    def touching(self, geom: shapely.Geometry) -> list[int]:
        """Indexes (in mosaic order) of the sources whose footprint intersects ``geom`` (lon/lat)."""
        return sorted(int(i) for i in self._tree.query(geom, predicate="intersects"))


# ---------------------------------------------------------------------- opening
@dataclass(frozen=True, slots=True)
class _Probe:
    """What one file tells about itself (cached per file size and mtime)."""

    source: dict[str, object]
    nbits: int
    vmax: float
    p999: float


def open_epoch(
    paths: Sequence[PathLikeStr],
    *,
    name: str,
    bands: Sequence[int] | None = None,
    cache: PathLikeStr | None = None,
) -> Epoch:
    """Open one epoch's rasters: validate, map bands, choose scaling, compute footprints.

    Parameters
    ----------
    paths : sequence of path-like
        GeoTIFF, COG, VRT or anything GDAL reads; earlier files win where they overlap.
    name : str
        ``"before"`` or ``"after"`` (used in messages).
    bands : sequence of int, optional
        1-based band indexes for red, green, blue[, nir]; overrides colour interpretation and
        the count rule (3 = RGB, 4 = RGBN, 13 = Sentinel-2 order).
    cache : path-like, optional
        JSON file of per-file probes (footprint, mapping, statistics) keyed by path, size and
        mtime; reused and updated, so re-opening thousands of small files is fast.

    Raises
    ------
    ImageryError
        A file is missing, unreadable, truncated, not a raster, without CRS or georeference,
        without usable bands, or wholly nodata.
    """
    if not paths:
        raise ImageryError(f"{name}: no imagery files given")
    store = _load_cache(cache)
    probes = []
    for path in paths:
        key = _cache_key(path, bands)
        if key in store:
            probes.append(_probe_from_json(store[key]))
            continue
        probe = _probe(Path(path), bands)
        store[key] = _probe_to_json(probe)
        probes.append(probe)
    if cache is not None:
        atomic_write_text(cache, json.dumps(store, sort_keys=True))
    scales = _epoch_scales(probes)
    sources = tuple(
        Source(**{**p.source, "scale": s, "scale_note": note})  # type: ignore[arg-type]
        for p, (s, note) in zip(probes, scales)
    )
    return Epoch(name=name, sources=sources)


def _cache_key(path: PathLikeStr, bands: Sequence[int] | None) -> str:
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return f"missing:{p}"
    return f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}|{list(bands) if bands else ''}"


def _load_cache(cache: PathLikeStr | None) -> dict[str, dict[str, object]]:
    if cache is None or not Path(cache).exists():
        return {}
    try:
        data = json.loads(Path(cache).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _probe_to_json(probe: _Probe) -> dict[str, object]:
    src = dict(probe.source)
    src["footprint"] = shapely.to_wkt(probe.source["footprint"], rounding_precision=9)
    return {"source": src, "nbits": probe.nbits, "vmax": probe.vmax, "p999": probe.p999}


def _probe_from_json(data: dict[str, object]) -> _Probe:
    src = dict(data["source"])  # type: ignore[call-overload]
    src["footprint"] = shapely.from_wkt(src["footprint"])
    for key in ("transform", "band_names", "band_indexes"):
        src[key] = tuple(src[key])
    return _Probe(src, int(data["nbits"]), float(data["vmax"]), float(data["p999"]))  # type: ignore[arg-type]


def _fail(path: Path, problem: str, err: BaseException | None = None) -> ImageryError:
    reason = f" ({str(err).splitlines()[0]})" if err is not None and str(err) else ""
    return ImageryError(f"{path}: {problem}{reason}")


def _probe(path: Path, bands: Sequence[int] | None) -> _Probe:
    if not path.exists():
        raise _fail(path, "imagery file not found")
    try:
        with warnings.catch_warnings():
            # an ungeoreferenced file is reported by _check_georef as one clear error instead
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            src = rasterio.open(path)
        with src:
            _check_georef(path, src)
            names, indexes, alpha = _band_map(path, src, bands)
            kind = _mask_kind(src, alpha)
            data, valid, lr_transform = _low_res(src, indexes, kind, alpha)
            meta = src.tags(ns="IMAGE_STRUCTURE")
            source = {
                "path": str(path),
                "crs": src.crs.to_wkt(),
                "transform": tuple(src.transform)[:6],
                "width": src.width,
                "height": src.height,
                "count": src.count,
                "dtype": src.dtypes[indexes[0] - 1],
                "nodata": None if src.nodata is None else float(src.nodata),
                "band_names": names,
                "band_indexes": indexes,
                "mask": kind,
                "alpha_index": alpha,
                "footprint": None,
                "gsd_m": _gsd_m(src),
            }
    except ImageryError:
        raise
    except (RasterioError, OSError, ValueError) as err:
        raise _fail(
            path, "cannot read as a raster: unreadable, truncated or not an image", err
        ) from err
    if not valid.any():
        raise _fail(path, "holds no valid pixels (all nodata / masked)")
    source["footprint"] = _footprint(valid, lr_transform, source["crs"])
    values = data[:, valid].astype(np.float64)
    finite = values[np.isfinite(values)]
    vmax = float(finite.max()) if finite.size else 0.0
    p999 = float(np.percentile(finite, 99.9)) if finite.size else 0.0
    nbits = int(meta.get("NBITS", 0) or 0)
    return _Probe(source, nbits, vmax, p999)


def _check_georef(path: Path, src: rasterio.DatasetReader) -> None:
    if src.crs is None:
        raise _fail(path, "has no CRS; assign one (gdal_edit.py -a_srs EPSG:xxxx)")
    if src.transform.is_identity:
        gcps, _ = src.gcps
        how = "only GCPs; warp it first (gdalwarp)" if gcps else "no geotransform"
        raise _fail(path, f"is not georeferenced ({how})")


def _band_map(
    path: Path, src: rasterio.DatasetReader, bands: Sequence[int] | None
) -> tuple[tuple[str, ...], tuple[int, ...], int]:
    """Band names and 1-based indexes: explicit ``bands``, colour interpretation, names, count."""
    interp = list(src.colorinterp)
    alphas = [i + 1 for i, c in enumerate(interp) if c == ColorInterp.alpha]
    alpha = alphas[0] if alphas else 0
    data_idx = [i for i in range(1, src.count + 1) if i != alpha]
    if bands:
        bad = [b for b in bands if not 1 <= int(b) <= src.count]
        if bad or len(bands) > len(RGBN):
            raise _fail(path, f"--bands {list(bands)} must be 1-4 indexes in 1..{src.count}")
        return RGBN[: len(bands)], tuple(int(b) for b in bands), alpha
    named = {_COLOR_NAMES[interp[i - 1]]: i for i in data_idx if interp[i - 1] in _COLOR_NAMES}
    if len(named) < 3:
        descr = [
            (_DESCRIPTIONS.get((d or "").strip().lower()), i + 1)
            for i, d in enumerate(src.descriptions)
        ]
        named = {n: i for n, i in descr if n is not None and i in data_idx}
    if len(named) >= 3:
        rest = [i for i in data_idx if i not in named.values()]
        if "nir" not in named and len(data_idx) == 4 and len(rest) == 1:
            named["nir"] = rest[0]
        order = [n for n in RGBN if n in named]
        return tuple(order), tuple(named[n] for n in order), alpha
    by_count = {1: ("gray",), 3: RGBN[:3], 4: RGBN, 13: SENTINEL2}
    if len(data_idx) in by_count:
        return by_count[len(data_idx)], tuple(data_idx), alpha
    raise _fail(
        path,
        f"cannot tell which of its {len(data_idx)} bands are red, green, blue (no colour "
        "interpretation); give --bands R,G,B[,NIR] as 1-based indexes",
    )


def _mask_kind(src: rasterio.DatasetReader, alpha: int) -> str:
    if alpha:
        return "alpha"
    if src.nodata is not None:
        return "nodata"
    if MaskFlags.per_dataset in src.mask_flag_enums[0]:
        return "mask"
    return "nan" if np.issubdtype(np.dtype(src.dtypes[0]), np.floating) else "zero"


def _low_res(
    src: rasterio.DatasetReader, indexes: tuple[int, ...], kind: str, alpha: int
) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.bool_], Affine]:
    """A decimated read (overviews where present) of the mapped bands and their validity."""
    f = max(1.0, max(src.width, src.height) / _PROBE_PX)
    shape = (max(1, round(src.height / f)), max(1, round(src.width / f)))
    near = Resampling.nearest
    # an alpha band is read with the data bands: one pass decoding the file, not two
    bands = [*indexes, alpha] if kind == "alpha" else list(indexes)
    nb = len(bands)
    data = _decimated(
        src, shape, lambda w, s: src.read(bands, window=w, out_shape=(nb, *s), resampling=near)
    )
    if kind == "alpha":
        data, valid = data[:-1], data[-1] > 0
    elif kind == "mask":
        valid = _decimated(
            src,
            shape,
            lambda w, s: src.read_masks(indexes[0], window=w, out_shape=s, resampling=near),
        )
        valid = valid > 0
    elif kind == "nodata":
        nod = src.nodata
        same = np.isnan(data) if np.isnan(nod) else data == nod
        valid = ~same.all(axis=0)
    elif kind == "nan":
        valid = np.isfinite(data).all(axis=0)
    else:
        valid = (data != 0).any(axis=0)
    if np.issubdtype(data.dtype, np.floating):
        valid &= np.isfinite(data).all(axis=0)
    lr = src.transform @ Affine.scale(src.width / shape[1], src.height / shape[0])
    return data, valid, lr


def _decimated(
    src: rasterio.DatasetReader,
    shape: tuple[int, int],
    read: Callable[[Window | None, tuple[int, int]], npt.NDArray[np.generic]],
) -> npt.NDArray[np.generic]:
    """``read`` of the whole file at ``shape`` (nearest), without filling GDAL's block cache.

    ``read(window, (rows, cols))`` is a rasterio read of that many rows and columns. With
    overviews GDAL reads a small one. Without, one decimated read decodes every block and keeps
    them all in GDAL's block cache (up to 5 % of the machine's memory: a 0.7 Gpx file took the
    coordinator to 1.4 GB). Here the file is read in strips of whole block rows, decimated along
    columns only, under a cache of two block rows, and each strip's output rows are the source
    rows GDAL's nearest read picks: the same result, every block decoded once (a 0.7 Gpx
    DEFLATE file: 3.3 s and 0.3 GB instead of 5.9 s and 1.3 GB).
    """
    height, width = src.height, src.width
    if src.overviews(1) or shape[0] >= height:
        return read(None, shape)
    block_h = max(1, src.block_shapes[0][0])
    row_bytes = width * src.count * max(np.dtype(t).itemsize for t in src.dtypes)
    cache = max(64 << 20, 2 * block_h * row_bytes)
    # the source row GDAL's nearest-neighbour read takes for each output row
    src_row = np.floor((np.arange(shape[0]) + 0.5) * (height / shape[0])).astype(np.int64)
    np.minimum(src_row, height - 1, out=src_row)
    out = None
    with rasterio.Env(GDAL_CACHEMAX=cache):
        for r0, r1 in _strips(0, height, block_h, 1):  # whole block rows, as tiles read them
            n = r1 - r0
            pick = np.flatnonzero((src_row >= r0) & (src_row < r1))
            if not len(pick):
                continue
            part = read(Window(0, r0, width, n), (n, shape[1]))
            if out is None:
                out = np.empty((*part.shape[:-2], *shape), part.dtype)
            out[..., pick, :] = part[..., src_row[pick] - r0, :]
    assert out is not None  # every output row has a source row
    return out


def _footprint(valid: npt.NDArray[np.bool_], transform: Affine, crs_wkt: str) -> shapely.Geometry:
    """Valid-data outline from a low-res mask, in lon/lat."""
    shapes = rasterio.features.shapes(valid.astype(np.uint8), mask=valid, transform=transform)
    polys = [shapely.geometry.shape(g) for g, _ in shapes]
    outline = shapely.union_all(polys)
    px = math.sqrt(abs(transform.determinant))
    outline = shapely.simplify(outline, 0.5 * px)
    outline = shapely.segmentize(outline, 20.0 * px)
    tf = pyproj.Transformer.from_crs(crs_wkt, "EPSG:4326", always_xy=True)
    lonlat = shapely.transform(
        outline, lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1]))
    )
    return shapely.make_valid(lonlat) if not lonlat.is_valid else lonlat


def _gsd_m(src: rasterio.DatasetReader) -> float:
    t = src.transform
    if src.crs.is_geographic:
        lon, lat = t @ (src.width / 2.0, src.height / 2.0)
        geod = pyproj.Geod(ellps="WGS84")
        dx = geod.inv(lon, lat, lon + t.a, lat + t.d)[2]
        dy = geod.inv(lon, lat, lon + t.b, lat + t.e)[2]
        return float(math.sqrt(dx * dy))
    unit = src.crs.linear_units_factor[1] if src.crs.linear_units_factor else 1.0
    return float(math.sqrt(abs(t.determinant)) * unit)


def _epoch_scales(probes: Sequence[_Probe]) -> list[tuple[float, str]]:
    """Scale divisor per source: uint8 /255, NBITS metadata, else bit depth from the data range.

    Sources without bit-depth metadata share one epoch-wide choice so mosaics have no seams.
    """
    unknown = [p for p in probes if not _fixed_scale(p)]
    vmax = max((p.vmax for p in unknown), default=0.0)
    p999 = max((p.p999 for p in unknown), default=0.0)
    shared = _range_scale(vmax, p999, unknown[0] if unknown else None)
    return [_fixed_scale(p) or shared for p in probes]


def _fixed_scale(probe: _Probe) -> tuple[float, str] | None:
    dtype = str(probe.source["dtype"])
    if dtype == "uint8":
        return 255.0, "uint8 / 255"
    if probe.nbits and np.issubdtype(np.dtype(dtype), np.integer):
        return float(2**probe.nbits - 1), f"NBITS={probe.nbits} metadata: / {2**probe.nbits - 1}"
    return None


def _range_scale(vmax: float, p999: float, probe: _Probe | None) -> tuple[float, str]:
    if probe is None:
        return 1.0, "unused"
    if np.issubdtype(np.dtype(str(probe.source["dtype"])), np.floating) and p999 <= 1.5:
        return 1.0, "float reflectance 0-1"
    for bits in (8, 10, 11, 12, 14):
        if 1.0 < vmax <= 2**bits - 1:
            return float(2**bits - 1), f"{bits}-bit data (max {vmax:g} <= {2**bits - 1})"
    if probe.source["band_names"] == SENTINEL2 or 3000.0 <= p999 <= 12000.0:
        return 10000.0, f"reflectance x 10000 (p99.9 {p999:g})"
    scale = max(p999, 1e-6)
    return scale, f"robust percentile: p99.9 = {scale:g}"


# ---------------------------------------------------------------------- epoch helpers
def common_bands(before: Epoch, after: Epoch) -> tuple[str, ...]:
    """Bands present in every file of both epochs, in the before epoch's order.

    Raises
    ------
    ImageryError
        No band in common (the message names both epochs' files and bands).
    """
    theirs = set(after.band_names)
    common = tuple(b for b in before.band_names if b in theirs)
    if not common:
        raise ImageryError(
            f"before ({', '.join(before.paths)}: bands {', '.join(before.band_names) or 'none'}) "
            f"and after ({', '.join(after.paths)}: bands {', '.join(after.band_names) or 'none'}) "
            "have no band in common; map bands with --bands"
        )
    return common


def epoch_footprint(epoch: Epoch) -> shapely.Geometry:
    """Union of the epoch's valid-data footprints, lon/lat."""
    return shapely.union_all([s.footprint for s in epoch.sources])


def epoch_footprint_near(epoch: Epoch, geom: shapely.Geometry) -> shapely.Geometry:
    """Union of the footprints that touch ``geom`` (lon/lat), via the spatial index."""
    hits = epoch.touching(geom)
    if not hits:
        return shapely.Polygon()
    return shapely.union_all([epoch.sources[i].footprint for i in hits])


def epoch_gsd_m(epoch: Epoch) -> float:
    """Native pixel size of an epoch (median over its files), metres."""
    return float(np.median([s.gsd_m for s in epoch.sources]))


def target_gsd_m(before: Epoch, after: Epoch) -> float:
    """Default tile GSD: the coarser of the two epochs' native resolutions, metres."""
    return max(epoch_gsd_m(before), epoch_gsd_m(after))


def load_clouds(path: PathLikeStr) -> shapely.Geometry:
    """Read a cloud-mask vector file (any OGR format and CRS) as one lon/lat geometry."""
    import geopandas as gpd

    try:
        frame = gpd.read_file(path)
    except Exception as err:  # pyogrio raises several types
        raise _fail(Path(path), "cannot read as a vector cloud mask", err) from err
    if frame.crs is not None:
        frame = frame.to_crs("EPSG:4326")
    polys = frame.geometry[frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polys.empty:
        raise _fail(Path(path), "holds no polygons; a cloud mask must be polygons")
    return shapely.union_all(polys.values)


# ---------------------------------------------------------------------- reading
def read_epoch(
    epoch: Epoch,
    tile: Tile,
    bands: tuple[str, ...],
    *,
    area: shapely.Geometry | None = None,
    engine: str = "auto",
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Read an epoch onto a tile grid: float32 0–1 ``(band, row, col)`` (0 where invalid), valid.

    Only the sources whose footprint touches the tile are opened, and only the source blocks
    the grid needs are decoded. The first valid pixel in source order wins.

    Parameters
    ----------
    epoch : Epoch
    tile : Tile
    bands : tuple of str
    area : shapely geometry, optional
        The tile's outline in lon/lat (computed when not given).
    engine : {"auto", "gdal"}
        ``"auto"``: where the tile-to-source pixel mapping is affine to within 0.05 source
        pixels (same CRS always; another CRS nearly always at tile size), read the source
        window and resample it with one bilinear pass (:func:`_read_affine`); elsewhere
        GDAL's warper. ``"gdal"``: GDAL's warper for every source (the reference path).
    """
    if engine not in ("auto", "gdal"):
        raise ValueError(f"engine must be 'auto' or 'gdal', not {engine!r}")
    area = tile_footprint_lonlat(tile) if area is None else area
    out = np.full((len(bands), tile.height, tile.width), np.nan, dtype=np.float32)
    valid = np.zeros(tile.shape, dtype=bool)
    scratch: npt.NDArray[np.float32] | None = None
    for i in epoch.touching(area):
        src = epoch.sources[i]
        if scratch is None and not valid.any():
            _read_source(src, tile, bands, out, engine)
            np.isfinite(out).all(axis=0, out=valid)
        else:
            scratch = _scratch(out.shape, scratch)
            _read_source(src, tile, bands, scratch, engine)
            fill = np.isfinite(scratch).all(axis=0) & ~valid
            out[:, fill] = scratch[:, fill]
            valid |= fill
        if valid.all():
            break
    out[:, ~valid] = 0.0
    np.clip(out, 0.0, 1.0, out=out)
    return out, valid


def _scratch(
    shape: tuple[int, ...], buf: npt.NDArray[np.float32] | None
) -> npt.NDArray[np.float32]:
    if buf is None:
        buf = np.empty(shape, dtype=np.float32)
    buf.fill(np.nan)
    return buf


def _read_source(
    src: Source, tile: Tile, bands: tuple[str, ...], dst: npt.NDArray[np.float32], engine: str
) -> None:
    """One source onto the tile grid into ``dst`` (pre-filled with NaN; NaN stays where invalid)."""
    mapping = _pixel_mapping(src, tile) if engine == "auto" else None
    try:
        if mapping is None:
            _warp(src, tile, bands, dst)
        else:
            _read_affine(src, tile, bands, dst, mapping)
    except (RasterioError, OSError) as err:
        raise _fail(Path(src.path), f"cannot read the window of tile {tile.id}", err) from err


@functools.lru_cache(maxsize=64)
def _transformer(from_crs: str, to_crs: str) -> pyproj.Transformer | None:
    """A cached tile-CRS -> source-CRS transformer; None where the two CRS are the same."""
    a, b = pyproj.CRS.from_user_input(from_crs), pyproj.CRS.from_user_input(to_crs)
    if a == b:
        return None
    return pyproj.Transformer.from_crs(a, b, always_xy=True)


def _pixel_mapping(src: Source, tile: Tile) -> Affine | None:
    """The affine map tile pixel (col, row) -> source pixel (col, row), or None.

    Same CRS: exact. Another CRS: a least-squares affine through a 5 x 5 grid of tile points
    transformed with pyproj; None (use GDAL's warper) where a point misses it by more than
    0.05 source pixels or does not transform.
    """
    to_src_px = ~Affine(*src.transform)
    tf = _transformer(tile.crs, src.crs)
    if tf is None:
        return to_src_px @ tile.affine
    n = _FIT_GRID
    cols, rows = np.meshgrid(np.linspace(0.0, tile.width, n), np.linspace(0.0, tile.height, n))
    cols, rows = cols.ravel(), rows.ravel()
    x, y = tile.affine @ (cols, rows)
    sx, sy = tf.transform(x, y)
    sc, sr = to_src_px @ (np.asarray(sx, dtype=np.float64), np.asarray(sy, dtype=np.float64))
    target = np.column_stack([sc, sr])
    if not np.isfinite(target).all():
        return None
    design = np.column_stack([cols, rows, np.ones_like(cols)])
    coef = np.linalg.lstsq(design, target, rcond=None)[0]
    if float(np.abs(design @ coef - target).max()) > _MAX_RESIDUAL_PX:
        return None
    (a, d), (b, e), (c, f) = coef.tolist()
    return Affine(a, b, c, d, e, f)


def _read_affine(
    src: Source,
    tile: Tile,
    bands: tuple[str, ...],
    dst: npt.NDArray[np.float32],
    mapping: Affine,
) -> None:
    """Read the source window under the tile and resample it bilinearly onto the grid.

    ``mapping`` takes tile pixels to source pixels. Only the source blocks under the (maybe
    rotated) tile are decoded, strip by strip, into a pixel-interleaved float32 buffer of the
    raw band values *premultiplied by validity* (0 where invalid) and a validity buffer (1/0;
    not resampled when every pixel read is valid). Where the source is much finer than the
    grid (more than 1.5 source pixels per tile pixel) each strip is block-averaged by the
    nearest integer factor first, so nothing aliases. One bilinear pass
    (``torch.nn.functional.grid_sample``, all bands at once) then gives, per tile pixel, the
    weighted sum of valid neighbours and their weight ``w``; the value is that sum divided by
    ``w`` and by the source's scale, and the pixel is valid where ``w >= 0.5``, i.e. where the
    valid neighbours carry at least half the bilinear weight. Nodata never leaks into values,
    and the valid edge falls half-way between source pixels, so adjacent files of a tiled
    epoch leave no seam (requiring all four neighbours would leave a 1-px invalid line between
    files; GDAL's warper accepts any valid neighbour).

    A window bigger than ``_READ_BUFFER_PX`` source pixels is read in chunks of whole tile
    rows (:func:`_row_chunks`), each with its own buffer; source blocks along a chunk boundary
    are decoded twice (GDAL's block cache often has them).
    """
    for r0, r1 in _row_chunks(tile.width, tile.height, mapping):
        part = mapping @ Affine.translation(0, r0)
        _read_affine_rows(src, tile.width, r1 - r0, bands, dst[:, r0:r1], part)


def _decimation(mapping: Affine) -> int:
    """Source pixels per block average (1: none) for a tile -> source pixel ``mapping``."""
    scale = math.sqrt(abs(mapping.determinant))  # source pixels per tile pixel
    return max(1, round(scale)) if scale > _DECIMATE_ABOVE else 1


def _window_px(width: float, height: float, mapping: Affine) -> float:
    """Source pixels in the bounding box of a ``width`` x ``height`` grid under ``mapping``."""
    a, b, _, d, e, _ = tuple(mapping)[:6]
    return (abs(a) * width + abs(b) * height) * (abs(d) * width + abs(e) * height)


def _row_chunks(width: int, height: int, mapping: Affine) -> list[tuple[int, int]]:
    """Tile row ranges whose source windows stay under ``_READ_BUFFER_PX`` (block-averaged
    windows count their averaged pixels), at least ``_READ_CHUNK_MIN_ROWS`` rows each."""
    k = _decimation(mapping)
    n = 1
    while (
        _window_px(width, -(-height // n), mapping) / (k * k) > _READ_BUFFER_PX
        and -(-height // (n + 1)) >= _READ_CHUNK_MIN_ROWS
    ):
        n += 1
    step = -(-height // n)
    return [(r0, min(height, r0 + step)) for r0 in range(0, height, step)]


def _read_affine_rows(
    src: Source,
    width: int,
    height: int,
    bands: tuple[str, ...],
    dst: npt.NDArray[np.float32],
    mapping: Affine,
) -> None:
    """:func:`_read_affine` of a ``width`` x ``height`` grid (``mapping`` from its pixels)."""
    lookup = dict(zip(src.band_names, src.band_indexes))
    indexes = [lookup[b] for b in bands]
    k = _decimation(mapping)
    pad = 2 * k
    tc = np.array([0.0, width, width, 0.0])
    tr = np.array([0.0, 0.0, height, height])
    qx, qy = mapping @ (tc, tr)
    quad = shapely.Polygon(np.column_stack([qx, qy]))
    with rasterio.open(src.path) as ds:
        # block averages on the source's own k x k grid: chunks of a tile share their blocks
        c0 = max(0, math.floor(float(qx.min())) - pad) // k * k
        c1 = min(ds.width, math.ceil(float(qx.max())) + pad)
        r0 = max(0, math.floor(float(qy.min())) - pad) // k * k
        r1 = min(ds.height, math.ceil(float(qy.max())) + pad)
        if c1 <= c0 or r1 <= r0:
            return
        shape = (-(-(r1 - r0) // k), -(-(c1 - c0) // k))
        buf = np.zeros((*shape, len(indexes)), np.float32)
        weight = np.zeros(shape, np.float32)
        complete = True  # every pixel read is valid: no weight pass needed inside the buffer
        block_h, block_w = ds.block_shapes[0]
        for ya, yb in _strips(r0, r1, block_h, k):
            slab = shapely.box(c0, ya - pad, c1, yb + pad).intersection(quad)
            if slab.is_empty:
                continue
            xmin, _, xmax, _ = slab.bounds
            xa = max(c0, math.floor(xmin) - pad)
            xb = min(c1, math.ceil(xmax) + pad)
            if k == 1:  # whole blocks cost the same to decode
                xa = max(c0, xa // block_w * block_w)
                xb = min(c1, -(-xb // block_w) * block_w)
            else:  # keep the block-average grid anchored at c0
                xa = c0 + (xa - c0) // k * k
            if xb <= xa:
                continue
            window = Window(xa, ya, xb - xa, yb - ya)
            data = ds.read(indexes, window=window)
            valid = _window_valid(ds, src, data, window)
            complete &= bool(valid.all()) and not (data.shape[1] % k or data.shape[2] % k)
            ra, ca = (ya - r0) // k, (xa - c0) // k
            _premultiply_into(data, valid, k, buf[ra:, ca:], weight[ra:, ca:])
    to_buf = Affine.scale(1.0 / k) @ Affine.translation(-c0, -r0) @ mapping
    _resample_into(buf, None if complete else weight, to_buf, 1.0 / src.scale, dst)


def _strips(r0: int, r1: int, block_h: int, k: int) -> list[tuple[int, int]]:
    """Source row ranges to read: block rows (k = 1) or multiples of ``k`` from ``r0``."""
    if k == 1:
        step = block_h * max(1, -(-256 // block_h))
        cuts = [r0, *range((r0 // step + 1) * step, r1, step), r1]
    else:
        step = k * max(1, 256 // k)
        cuts = [*range(r0, r1, step), r1]
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _window_valid(
    ds: rasterio.DatasetReader,
    src: Source,
    data: npt.NDArray[np.generic],
    window: Window,
) -> npt.NDArray[np.bool_]:
    """Validity of a window's pixels: the source's mask kind, as GDAL's warper applies it."""
    if src.mask == "alpha":
        valid = ds.read(src.alpha_index, window=window) > 0
    elif src.mask == "mask":
        valid = ds.read_masks(src.band_indexes[0], window=window) > 0
    elif src.mask == "nodata" and src.nodata is not None and not math.isnan(src.nodata):
        valid = (data != data.dtype.type(src.nodata)).any(axis=0)
    elif src.mask == "zero":
        valid = data.any(axis=0)
    else:  # NaN nodata, or float data without nodata
        valid = np.ones(data.shape[1:], dtype=bool)
    if np.issubdtype(data.dtype, np.floating):
        valid &= np.isfinite(data).all(axis=0)
    return valid


def _premultiply_into(
    data: npt.NDArray[np.generic],
    valid: npt.NDArray[np.bool_],
    k: int,
    values: npt.NDArray[np.float32],
    weight: npt.NDArray[np.float32],
) -> None:
    """Write raw band values where valid (else 0) and validity into the buffer's corner.

    ``values`` is ``(row, col, band)`` (pixel-interleaved, for a channels-last resampling
    pass), ``weight`` is ``(row, col)``. With ``k > 1`` both get the means over ``k`` x ``k``
    blocks (rows and columns padded with invalid pixels to a multiple of ``k``): the mean of
    the valid values times the valid fraction, and the valid fraction.
    """
    nb, rows, cols = data.shape
    if k == 1:
        body = values[:rows, :cols]
        for b in range(nb):  # band by band: ~2.5x faster than one transposing copy
            body[..., b] = data[b]
        if not valid.all():
            body[~valid] = 0.0
        weight[:rows, :cols] = valid
        return
    prow, pcol = -(-rows // k) * k, -(-cols // k) * k
    full = np.zeros((prow, pcol, nb + 1), dtype=np.float32)
    full[:rows, :cols, :nb] = data.transpose(1, 2, 0)
    full[:rows, :cols, nb] = valid
    if not valid.all():
        full[:rows, :cols][~valid] = 0.0
    blocks = full.reshape(prow // k, k, pcol // k, k, nb + 1).sum(axis=(1, 3))
    blocks *= np.float32(1.0 / (k * k))
    br, bc = blocks.shape[:2]
    values[:br, :bc] = blocks[..., :nb]
    weight[:br, :bc] = blocks[..., nb]


def _resample_into(
    values: npt.NDArray[np.float32],
    weight: npt.NDArray[np.float32] | None,
    to_buf: Affine,
    factor: float,
    dst: npt.NDArray[np.float32],
) -> None:
    """Bilinear resampling of a premultiplied buffer onto the grid part it covers, into ``dst``.

    ``values`` ``(row, col, band)`` and ``weight`` (None: 1 wherever the buffer has pixels)
    are resampled with ``torch.nn.functional.grid_sample``; ``dst`` gets ``values * factor /
    weight`` where ``weight >= 0.5`` and NaN elsewhere in that part.
    """
    torch = _torch()
    hb, wb = values.shape[:2]
    rows, cols = dst.shape[1:]
    inv = ~to_buf  # the grid part whose pixels can reach the buffer
    bx, by = inv @ (np.array([0.0, wb, wb, 0.0]), np.array([0.0, 0.0, hb, hb]))
    ca, cb = max(0, math.floor(float(bx.min())) - 1), min(cols, math.ceil(float(bx.max())) + 1)
    ra, rb = max(0, math.floor(float(by.min())) - 1), min(rows, math.ceil(float(by.max())) + 1)
    if cb <= ca or rb <= ra:
        return
    a, b, c, d, e, f = tuple(to_buf)[:6]
    cc = np.arange(ca, cb, dtype=np.float64) + 0.5
    rr = np.arange(ra, rb, dtype=np.float64)[:, None] + 0.5
    if weight is None:  # inside the buffer's pixel centres the weight is 1: no pass needed
        corner_c = np.array([ca + 0.5, cb - 0.5, cb - 0.5, ca + 0.5])
        px, py = to_buf @ (corner_c, np.array([ra + 0.5, ra + 0.5, rb - 0.5, rb - 0.5]))
        inside = 0.5 <= px.min() and px.max() <= wb - 0.5 and 0.5 <= py.min()
        if not (inside and py.max() <= hb - 0.5):
            weight = np.ones((hb, wb), np.float32)
    kw = {"mode": "bilinear", "padding_mode": "zeros", "align_corners": False}
    sample = torch.nn.functional.grid_sample
    ax, dx = a * cc, d * cc
    # blocks of whole output rows: grid, samples and weights stay small (a few MB) and in cache;
    # every output pixel gets exactly the arithmetic it would get in one whole-grid pass
    step = max(1, _RESAMPLE_BLOCK_PX // (cb - ca))
    grid = np.empty((1, min(step, rb - ra), cb - ca, 2), dtype=np.float32)
    with torch.inference_mode():
        src_v = torch.from_numpy(values).permute(2, 0, 1)[None]
        src_w = None if weight is None else torch.from_numpy(weight)[None, None]
        for r0 in range(0, rb - ra, step):
            r1 = min(rb - ra, r0 + step)
            g = grid[:, : r1 - r0]
            # normalised input coordinates (align_corners=False: -1 and 1 are the buffer's edges)
            g[0, ..., 0] = (ax + (b * rr[r0:r1] + c)) * (2.0 / wb) - 1.0
            g[0, ..., 1] = (dx + (e * rr[r0:r1] + f)) * (2.0 / hb) - 1.0
            tgrid = torch.from_numpy(g)
            part = dst[:, ra + r0 : ra + r1, ca:cb]
            np.multiply(sample(src_v, tgrid, **kw)[0].numpy(), np.float32(factor), out=part)
            if src_w is None:
                continue
            w = sample(src_w, tgrid, **kw)[0, 0].numpy()
            edge = w < np.float32(0.999)
            if edge.any():
                ok = edge & (w >= np.float32(_MIN_WEIGHT))
                part[:, ok] /= w[ok]
                part[:, edge & ~ok] = np.nan


def _torch() -> types.ModuleType:
    """The torch module, imported here so that ``import bordewatch`` stays fast."""
    import torch

    if torch.get_num_threads() != 1 and _in_dask_worker():
        torch.set_num_threads(1)  # one single-threaded worker process per core
    return torch


def _in_dask_worker() -> bool:
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def _warp(src: Source, tile: Tile, bands: tuple[str, ...], dst: npt.NDArray[np.float32]) -> None:
    """Warp one source's bands onto the tile grid into ``dst`` (NaN where invalid), scaled."""
    lookup = dict(zip(src.band_names, src.band_indexes))
    indexes = [lookup[b] for b in bands]
    kwargs: dict[str, object] = {}
    if src.mask == "alpha":
        kwargs["src_alpha"] = src.alpha_index
    elif src.mask in ("nodata", "zero", "nan"):
        kwargs["src_nodata"] = {"nodata": src.nodata, "zero": 0, "nan": float("nan")}[src.mask]
        kwargs["UNIFIED_SRC_NODATA"] = "YES"
    try:
        with rasterio.open(src.path) as ds:
            reproject(
                rasterio.band(ds, indexes),
                dst,
                dst_transform=tile.affine,
                dst_crs=tile.crs,
                dst_nodata=float("nan"),
                resampling=Resampling.bilinear,
                num_threads=1,
                **kwargs,
            )
    except (RasterioError, OSError) as err:
        raise _fail(Path(src.path), f"cannot read the window of tile {tile.id}", err) from err
    dst *= np.float32(1.0 / src.scale)


def read_pair(
    before: Epoch,
    after: Epoch,
    tile: Tile,
    *,
    bands: tuple[str, ...] | None = None,
    clouds: shapely.Geometry | None = None,
    auto_clouds: bool = True,
    engine: str = "auto",
) -> TilePair:
    """Read both epochs onto the tile grid.

    Parameters
    ----------
    before, after : Epoch
    tile : Tile
    bands : tuple of str, optional
        Default: :func:`common_bands`.
    clouds : shapely geometry, optional
        User cloud polygons in lon/lat; pixels inside are invalid.
    auto_clouds : bool
        Also flag thick cloud and its whitish margins (:func:`haze_mask`) in either epoch (not
        snow, through which the other epoch's ground shows).
    engine : {"auto", "gdal"}
        How sources are resampled onto the grid (see :func:`read_epoch`).

    Returns
    -------
    TilePair
        ``valid`` is both epochs valid, not cloud, inside the grid; it may be all False (the
        caller skips such tiles and reports them).
    """
    bands = common_bands(before, after) if bands is None else tuple(bands)
    area = tile_footprint_lonlat(tile)
    b_img, b_valid = read_epoch(before, tile, bands, area=area, engine=engine)
    a_img, a_valid = read_epoch(after, tile, bands, area=area, engine=engine)
    valid = b_valid & a_valid
    if clouds is not None and not clouds.is_empty:
        valid &= ~_rasterize_lonlat(clouds, tile)
    if auto_clouds and valid.any():
        valid &= ~haze_mask(b_img, valid, bands, tile.gsd_m, other=a_img)
        valid &= ~haze_mask(a_img, valid, bands, tile.gsd_m, other=b_img)
    return TilePair(tile=tile, before=b_img, after=a_img, valid=valid, bands=bands)


def _rasterize_lonlat(geom: shapely.Geometry, tile: Tile) -> npt.NDArray[np.bool_]:
    """Burn a lon/lat geometry onto the (possibly rotated) tile grid."""
    tf = pyproj.Transformer.from_crs("EPSG:4326", tile.crs, always_xy=True)
    inv = ~tile.affine

    def to_px(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = tf.transform(xy[:, 0], xy[:, 1])
        col, row = inv @ (np.asarray(x), np.asarray(y))
        return np.column_stack([col, row])

    px_geom = shapely.transform(shapely.segmentize(geom, 0.001), to_px)
    window = shapely.box(0, 0, tile.width, tile.height)
    px_geom = shapely.intersection(px_geom, window)
    if px_geom.is_empty:
        return np.zeros(tile.shape, dtype=bool)
    burnt = rasterio.features.rasterize([(px_geom, 1)], out_shape=tile.shape, dtype="uint8")
    return burnt.astype(bool)


GROUND_SEEN_RATIO = 1.3
"""A bright flat region through which the other epoch's ground shows this much (see
:func:`haze_mask`) is snow, not cloud."""


def haze_mask(
    image: npt.NDArray[np.float32],
    valid: npt.NDArray[np.bool_],
    bands: tuple[str, ...],
    gsd_m: float,
    *,
    bright: float = 0.8,
    flat: float = 0.03,
    min_area_m2: float = 10_000.0,
    margin_white: float = 0.9,
    margin_bright: float = 0.4,
    margin_m: float = 100.0,
    other: npt.NDArray[np.float32] | None = None,
    ground_ratio: float = GROUND_SEEN_RATIO,
) -> npt.NDArray[np.bool_]:
    """Flag bright, low-texture areas (thick cloud, haze, snow fields) and their margins as invalid.

    Works on ~8 m cells (block means), so it costs a few ms per tile: a cell is hazy where the
    visible bands' mean exceeds ``bright`` and its local standard deviation (3x3 cells) is below
    ``flat``; regions smaller than ``min_area_m2`` (white roofs) are dropped. A cloud's soft
    margin is thinner: the ground shows through, textured, but pulled towards white. From each
    hazy region the flag grows, up to ``margin_m``, through cells whose visible bands are nearly
    equal (smallest over largest band mean at least ``margin_white``) and whose mean exceeds
    ``margin_bright``: only from a region found, so a tile-wide veil of haze, grey concrete or a
    white road elsewhere is not flagged by it. The result is grown by one more cell. A heuristic:
    switch it off (``auto_clouds=False``) over bright sand.

    Snow is as bright and flat as thick cloud at 8 m, but it lies on the ground: the roads,
    tracks, field edges and trees of the other epoch still show through it, where thick cloud
    hides them. Given ``other`` (the other epoch on the same grid), a hazy region is kept only
    where this epoch's brightness steps at the other epoch's strongest steps are less than
    ``ground_ratio`` times its steps elsewhere in the region (:func:`_ground_seen`; 1 where
    nothing shows). On tuning scenes the thick cloud cores measured 0.93-1.21 (nothing_new 602,
    hard 540), snow regions 1.25-2.7 (hard 541, 542; 40 % of their *after* had been flagged),
    and regions where cloud and snow join 1.36-1.51 (these are kept as snow).

    Through the pipeline on tuning scenes (2 km each; nothing_new and demo seeds 600-605, hard
    540-543, hoeryong 600-601; clouds in 7 of them), against the cores alone: false new fence on
    nothing_new 766 -> 502 m, lanes 711 -> 191 m, towers 3 -> 0 (roads under soft cloud margins
    came out as new); demo fence F1 0.42 -> 0.40 (recall 0.36 -> 0.34), lanes 0.77 -> 0.76, towers
    14 -> 7 predicted (5 right either way); hard fence 356 -> 132 m predicted (F1 0.04 -> 0.02),
    lanes 0.36 -> 0.39; no cloud-free scene changed. On the real images in ``../shared/data``
    (LEVIR-CD, the georef scenes) nothing is flagged, with or without the margins.
    """
    visible = [i for i, b in enumerate(bands) if b in ("red", "green", "blue", "gray")]
    visible = visible or list(range(len(bands)))
    f = max(1, round(8.0 / gsd_m))
    rows, cols = valid.shape
    hr, hc = -(-rows // f), -(-cols // f)
    band_cells = np.empty((len(visible), hr, hc), np.float32)
    plane = np.zeros((hr * f, hc * f), dtype=np.float32)
    for j, i in enumerate(visible):  # one band at a time: no full-tile stack
        plane[:rows, :cols] = image[i]
        band_cells[j] = plane.reshape(hr, f, hc, f).mean(axis=(1, 3))
    del plane
    cells = band_cells.mean(axis=0)
    mean = ndimage.uniform_filter(cells, 3, mode="nearest")
    var = ndimage.uniform_filter(cells * cells, 3, mode="nearest") - mean * mean
    hazy = (mean > bright) & (np.sqrt(np.maximum(var, 0.0)) < flat)
    if not hazy.any():
        return np.zeros_like(valid)
    labels, n = ndimage.label(hazy)
    sizes = np.bincount(labels.ravel(), minlength=n + 1) * (f * gsd_m) ** 2
    keep = sizes >= min_area_m2
    keep[0] = False
    if other is not None and keep.any():  # snow, not cloud: the ground shows
        keep &= _ground_seen(labels, keep, image, other, valid, visible, gsd_m, f) < ground_ratio
    core = keep[labels]
    if core.any() and margin_m > 0 and len(visible) > 1:
        top = band_cells.max(axis=0)
        whitish = (band_cells.min(axis=0) >= margin_white * top) & (cells > margin_bright)
        reach = ndimage.binary_dilation(
            core, structure=np.ones((3, 3), bool), iterations=max(1, round(margin_m / (f * gsd_m)))
        )
        core = ndimage.binary_propagation(core, mask=core | (whitish & reach))
    hazy = ndimage.binary_dilation(core, structure=np.ones((3, 3), bool))
    return np.repeat(np.repeat(hazy, f, axis=0), f, axis=1)[:rows, :cols]


def _ground_seen(
    labels: npt.NDArray[np.int32],
    keep: npt.NDArray[np.bool_],
    image: npt.NDArray[np.float32],
    other: npt.NDArray[np.float32],
    valid: npt.NDArray[np.bool_],
    visible: list[int],
    gsd_m: float,
    f: int,
) -> npt.NDArray[np.float64]:
    """Per region label: how much this epoch shows the other epoch's structures (1: not at all).

    On a ~1 m grid smoothed by 1 m (sensor noise down, edges kept), this epoch's brightness
    steps at the other epoch's strongest steps in the region (its top tenth; 3 x 3 maxima, for
    a little misregistration) over its steps elsewhere in the region. Regions with fewer than
    100 valid pixels get 1.
    """
    k = max(1, round(1.0 / gsd_m))
    rows, cols = valid.shape
    r1, c1 = rows // k, cols // k

    def steps(img: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        g = np.zeros((r1, c1), np.float32)
        for i in visible:
            g += img[i, : r1 * k, : c1 * k].reshape(r1, k, c1, k).mean(axis=(1, 3))
        g /= len(visible)
        g = ndimage.gaussian_filter(g, 1.0, mode="nearest")
        out = np.zeros_like(g)
        out[:-1] += np.abs(np.diff(g, axis=0))
        out[:, :-1] += np.abs(np.diff(g, axis=1))
        return out

    this = steps(image)
    there = ndimage.maximum_filter(steps(other), 3)
    ok = valid[: r1 * k : k, : c1 * k : k]
    lab = labels[(np.arange(r1) * k + k // 2) // f][:, (np.arange(c1) * k + k // 2) // f]
    ratio = np.ones(len(keep))
    for j in np.flatnonzero(keep):
        m = (lab == j) & ok
        if m.sum() < 100:
            continue
        t, o = this[m], there[m]
        strong = o >= np.percentile(o, 90)
        ratio[j] = float(np.median(t[strong])) / max(float(np.median(t[~strong])), 1e-6)
    return ratio


def epoch_summary(epoch: Epoch) -> dict[str, object]:
    """The epoch as JSON-friendly values for run.json: files, bands, scaling, GSD, masks."""
    files = []
    for src in epoch.sources:
        data = asdict(src)
        data["footprint"] = shapely.to_wkt(src.footprint, rounding_precision=6)
        data.pop("crs")
        files.append(data)
    return {"name": epoch.name, "bands": list(epoch.band_names), "files": files}
