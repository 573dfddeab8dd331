"""Epochs and tile reading: validation, band mapping, scaling, footprints, warping, masks."""

from __future__ import annotations

import itertools
import pickle
from pathlib import Path

import numpy as np
import pyproj
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.enums import ColorInterp
from scipy import ndimage

from bordewatch.border import default_border
from bordewatch.errors import ImageryError
from bordewatch.imagery import (
    common_bands,
    epoch_summary,
    haze_mask,
    open_epoch,
    read_pair,
    target_gsd_m,
)
from bordewatch.tiling import Tile, plan_tiles, tile_coverage

KM = 612.0


def border_xy(km: float = KM) -> tuple[str, float, float]:
    """UTM CRS and x, y of the default border's point at ``km``."""
    border = default_border()
    crs = border.utm_crs(km, km + 1.0).to_string()
    lon, lat = border.point_at([km])
    tf = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = tf.transform(lon[0], lat[0])
    return crs, float(x), float(y)


def texture(shape: tuple[int, int], rng: int = 0, sigma: float = 2.0) -> np.ndarray:
    """Smooth seeded noise scaled to 0–1."""
    img = ndimage.gaussian_filter(np.random.default_rng(rng).random(shape), sigma)
    return (img - img.min()) / (img.max() - img.min())


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None,
    transform: Affine,
    nodata: float | None = None,
    interp: list[ColorInterp] | None = None,
    nbits: int | None = None,
    **profile: object,
) -> Path:
    """Write a tiny tiled GeoTIFF."""
    opts = dict(
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
        tiled=True,
        blockxsize=64,
        blockysize=64,
        compress="deflate",
    )
    if nbits:
        opts["nbits"] = nbits
    opts.update(profile)
    with rasterio.open(path, "w", **opts) as dst:
        dst.write(data)
        if interp is not None:
            dst.colorinterp = interp
    return path


def scene(
    path: Path, *, size: int = 240, gsd: float = 5.0, rng: int = 0, collar: bool = True
) -> Path:
    """A uint8 RGB scene centred on the border at KM, zero collar outside a rotated square."""
    crs, x, y = border_xy()
    img = (texture((size, size), rng) * 200 + 30).astype(np.uint8)
    data = np.stack([img, img // 2 + 20, 255 - img])
    if collar:
        rr, cc = np.mgrid[:size, :size] - size / 2
        inside = (np.abs(rr + cc) < size * 0.6) & (np.abs(rr - cc) < size * 0.6)
        data[:, ~inside] = 0
    transform = Affine(gsd, 0, x - size * gsd / 2, 0, -gsd, y + size * gsd / 2)
    return write_raster(path, data, crs=crs, transform=transform)


# ---------------------------------------------------------------------- opening and validation
def test_open_epoch_maps_bands_scales_and_footprints_the_valid_area(tmp_path: Path) -> None:
    path = scene(tmp_path / "a.tif")
    epoch = open_epoch([path], name="before")
    src = epoch.sources[0]
    assert src.band_names == ("red", "green", "blue")
    assert src.scale == 255.0 and src.mask == "zero"
    assert src.gsd_m == pytest.approx(5.0)
    # the footprint is the rotated valid square (~0.72 of the bbox), not the bounding box
    with rasterio.open(path) as ds:
        bbox = shapely.box(*rasterio.warp.transform_bounds(ds.crs, "EPSG:4326", *ds.bounds))
    ratio = src.footprint.area / bbox.area
    assert 0.66 < ratio < 0.78
    assert pickle.loads(pickle.dumps(epoch)).touching(src.footprint) == [0]
    assert epoch_summary(epoch)["files"][0]["scale_note"] == "uint8 / 255"  # type: ignore[index]


@pytest.mark.parametrize(
    ("vmax", "nbits", "scale"), [(4000, None, 4095.0), (9000, 14, 16383.0), (2047, None, 2047.0)]
)
def test_uint16_scaling_by_metadata_or_range(
    tmp_path: Path, vmax: int, nbits: int | None, scale: float
) -> None:
    crs, x, y = border_xy()
    data = (texture((64, 64))[None].repeat(4, 0) * vmax).astype(np.uint16)
    data[0, 0, 0] = vmax
    path = write_raster(
        tmp_path / "u16.tif", data, crs=crs, transform=Affine(2, 0, x, 0, -2, y), nbits=nbits
    )
    src = open_epoch([path], name="after").sources[0]
    assert src.scale == scale
    assert src.band_names == ("red", "green", "blue", "nir")


def test_float_nan_nodata_reads_as_invalid(tmp_path: Path) -> None:
    crs, x, y = border_xy()
    data = texture((120, 120))[None].repeat(3, 0).astype(np.float32) * 0.5
    data[:, :, :60] = np.nan
    path = write_raster(
        tmp_path / "f.tif",
        data,
        crs=crs,
        transform=Affine(10, 0, x - 600, 0, -10, y + 600),
        nodata=float("nan"),
    )
    epoch = open_epoch([path], name="before")
    assert epoch.sources[0].scale == 1.0
    tile = plan_tiles(default_border(), km_range=(KM - 0.3, KM + 0.3), corridor_m=300, gsd_m=10)[0]
    pair = read_pair(epoch, epoch, tile, auto_clouds=False)
    assert np.isfinite(pair.before).all()
    # the west half of the raster is NaN: valid pixels all lie east of x
    rows, cols = np.nonzero(pair.valid)
    xs, _ = tile.affine @ (cols + 0.5, rows + 0.5)
    assert pair.valid.any() and np.all(np.asarray(xs) > x - 15)


@pytest.mark.parametrize(
    ("count", "interp", "bands", "expected"),
    [
        (13, None, None, "coastal"),
        (2, [ColorInterp.gray, ColorInterp.undefined], [2, 1], ("red", "green")),
        (4, [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha], None, 3),
    ],
)
def test_band_mapping(
    tmp_path: Path,
    count: int,
    interp: list[ColorInterp] | None,
    bands: list[int] | None,
    expected: object,
) -> None:
    crs, x, y = border_xy()
    data = np.full((count, 32, 32), 7, dtype=np.uint16 if count == 13 else np.uint8)
    path = write_raster(
        tmp_path / "b.tif", data, crs=crs, transform=Affine(10, 0, x, 0, -10, y), interp=interp
    )
    src = open_epoch([path], name="before", bands=bands).sources[0]
    if expected == "coastal":
        assert len(src.band_names) == 13 and src.band_names[0] == "coastal"
    elif expected == 3:
        assert src.band_names == ("red", "green", "blue") and src.mask == "alpha"
        assert src.alpha_index == 4
    else:
        assert src.band_names == expected and src.band_indexes == (2, 1)


def test_unknown_band_layout_asks_for_bands(tmp_path: Path) -> None:
    crs, x, y = border_xy()
    path = write_raster(
        tmp_path / "five.tif",
        np.ones((5, 16, 16), np.uint8),
        crs=crs,
        transform=Affine(1, 0, x, 0, -1, y),
        photometric="MINISBLACK",
    )
    with pytest.raises(ImageryError, match=r"five\.tif.*--bands"):
        open_epoch([path], name="before")


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    good = scene(tmp_path / "good.tif")
    truncated = tmp_path / "cut.tif"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    _, x, y = border_xy()
    nocrs = write_raster(
        tmp_path / "nocrs.tif",
        np.ones((3, 16, 16), np.uint8),
        crs=None,
        transform=Affine(1, 0, x, 0, -1, y),
    )
    cases = [
        (tmp_path / "missing.tif", "not found"),
        (truncated, "truncated"),
        (text, "cannot read"),
        (nocrs, "no CRS"),
    ]
    for path, problem in cases:
        with pytest.raises(ImageryError, match=problem) as info:
            open_epoch([good, path], name="after")
        assert str(path) in str(info.value)


def test_all_nodata_file_is_refused(tmp_path: Path) -> None:
    crs, x, y = border_xy()
    path = write_raster(
        tmp_path / "empty.tif",
        np.zeros((3, 32, 32), np.uint8),
        crs=crs,
        transform=Affine(1, 0, x, 0, -1, y),
        nodata=0,
    )
    with pytest.raises(ImageryError, match=r"empty\.tif.*no valid pixels"):
        open_epoch([path], name="before")


def test_common_bands_error_names_both_files(tmp_path: Path) -> None:
    crs, x, y = border_xy()
    t = Affine(1, 0, x, 0, -1, y)
    gray = write_raster(tmp_path / "pan.tif", np.ones((1, 16, 16), np.uint8), crs=crs, transform=t)
    rgb = scene(tmp_path / "rgb.tif")
    before, after = open_epoch([gray], name="before"), open_epoch([rgb], name="after")
    with pytest.raises(ImageryError, match=r"pan\.tif.*rgb\.tif"):
        common_bands(before, after)


# ---------------------------------------------------------------------- reading
def test_read_pair_values_match_the_source(tmp_path: Path) -> None:
    before = open_epoch([scene(tmp_path / "b.tif", rng=1)], name="before")
    after = open_epoch([scene(tmp_path / "a.tif", rng=2)], name="after")
    assert target_gsd_m(before, after) == pytest.approx(5.0)
    tile = plan_tiles(default_border(), km_range=(KM - 0.2, KM + 0.2), corridor_m=200, gsd_m=5)[0]
    assert tile.affine.b != 0  # the grid is rotated along the border here
    pair = read_pair(before, after, tile, auto_clouds=False)
    assert pair.before.dtype == np.float32 and pair.bands == ("red", "green", "blue")
    assert pair.valid.mean() > 0.9
    # sample the source at the centres of some valid grid pixels
    rows, cols = np.nonzero(pair.valid)
    pick = np.linspace(0, rows.size - 1, 50).astype(int)
    xs, ys = tile.affine @ (cols[pick] + 0.5, rows[pick] + 0.5)
    with rasterio.open(before.sources[0].path) as ds:
        ref = np.array([v for v in ds.sample(list(zip(xs, ys)), indexes=1)])[:, 0] / 255.0
    assert np.median(np.abs(pair.before[0, rows[pick], cols[pick]] - ref)) < 0.03


def test_mosaic_first_valid_source_wins_and_clouds_mask(tmp_path: Path) -> None:
    crs, x, y = border_xy()
    t = Affine(5, 0, x - 600, 0, -5, y + 600)
    first = np.full((3, 240, 240), 100, np.uint8)
    first[:, :, 120:] = 0  # first file: only the west half is valid
    second = np.full((3, 240, 240), 200, np.uint8)
    a = write_raster(tmp_path / "first.tif", first, crs=crs, transform=t)
    b = write_raster(tmp_path / "second.tif", second, crs=crs, transform=t)
    epoch = open_epoch([a, b], name="after")
    tile = plan_tiles(default_border(), km_range=(KM - 0.2, KM + 0.2), corridor_m=200, gsd_m=5)[0]
    pair = read_pair(epoch, epoch, tile, auto_clouds=False)
    vals = np.round(pair.after[0][pair.valid] * 255)
    assert set(np.unique(vals)) <= set(np.arange(95, 205))
    assert (vals == 100).mean() > 0.2 and (vals == 200).mean() > 0.2
    rows, cols = np.nonzero(pair.valid & (np.round(pair.after[0] * 255) == 100))
    xs, _ = tile.affine @ (cols + 0.5, rows + 0.5)
    assert np.all(np.asarray(xs) < x + 5)  # the first file's pixels only where it is valid
    # a cloud polygon over the border point removes those pixels
    lon, lat = default_border().point_at([KM])
    cloud = shapely.Point(lon[0], lat[0]).buffer(0.001)
    clouded = read_pair(epoch, epoch, tile, clouds=cloud, auto_clouds=False)
    lost = pair.valid.sum() - clouded.valid.sum()
    expected = 0.001**2 * np.pi * 111_320**2 * np.cos(np.radians(lat[0])) / 25.0
    assert 0.8 * expected < lost < 1.2 * expected


def test_haze_mask_flags_bright_flat_areas_not_texture() -> None:
    img = np.stack([texture((300, 300), 3) * 0.5] * 3).astype(np.float32)
    img[:, 50:250, 50:200] = 0.9  # a 200 m x 150 m bright flat patch at 1 m
    img[:, 10:30, 260:280] = 0.95  # a white roof
    valid = np.ones((300, 300), bool)
    hazy = haze_mask(img, valid, ("red", "green", "blue"), 1.0)
    assert hazy[60:240, 60:190].all()
    assert not hazy[10:30, 260:280].any()
    assert hazy.mean() < 0.45


def _green_ground(shape: tuple[int, int], rng: int) -> np.ndarray:
    """Textured vegetation: red, green and blue clearly unequal (0.2-0.4 bright)."""
    t = 0.7 + 0.6 * texture(shape, rng)
    return np.stack([0.15 * t, 0.35 * t, 0.12 * t]).astype(np.float32)


def test_haze_mask_grows_into_a_clouds_whitish_margin_only() -> None:
    """A soft cloud margin (ground showing through, pulled towards white) is flagged with its
    core, up to ``margin_m``; grey concrete away from any core and a tile-wide haze are not."""
    bands = ("red", "green", "blue")
    shape = (500, 500)
    img = _green_ground(shape, 4)
    white = np.float32(0.93)
    img[:, 170:330, 170:330] = white  # a 160 m thick core at 1 m
    ring = np.zeros(shape, bool)
    ring[130:370, 130:370] = True
    ring[170:330, 170:330] = False
    img[:, ring] = img[:, ring] * 0.3 + white * 0.7  # 40 m of soft margin, textured
    img[:, 20:26, 10:490] = 0.6  # a concrete road 6 m wide, clear of the cloud
    valid = np.ones(shape, bool)
    hazy = haze_mask(img, valid, bands, 1.0)
    assert hazy[170:330, 170:330].all()
    assert hazy[ring].mean() > 0.95
    assert not hazy[20:26, 10:490].any()
    core_only = haze_mask(img, valid, bands, 1.0, margin_m=0.0)
    assert core_only[ring].mean() < 0.5  # the old flag: the core and one cell
    # a whitish stretch reaching far from the core is flagged only up to margin_m (+ a cell)
    far = img.copy()
    far[:, 170:330, 370:500] = far[:, 170:330, 370:500] * 0.3 + white * 0.7
    grown = haze_mask(far, valid, bands, 1.0)
    assert grown[170:330, 370:420].all()
    assert not grown[170:330, 450:500].any()
    # haze over the whole tile without a thick core: nothing
    veiled = _green_ground(shape, 5) * 0.3 + white * 0.7
    assert not haze_mask(veiled, valid, bands, 1.0).any()


def test_haze_mask_keeps_snow_that_shows_the_other_epochs_ground() -> None:
    """Snow and thick cloud are both bright and flat; under snow the other epoch's ground still
    shows (a road, field edges, faintly), under thick cloud nothing does. Given the other epoch,
    only the cloud is flagged."""
    bands = ("red", "green", "blue")
    shape = (400, 400)
    ground = _green_ground(shape, 6)
    ground[:, 100:400:60, :] *= 0.4  # field edges and tracks every 60 m, both epochs
    ground[:, :, 195:201] = 0.25  # a dark road, both epochs
    white = np.float32(0.97)
    snow = ground * 0.15 + white * 0.85
    snow[:, :, 195:201] = 0.3  # ploughed
    cloud = ground.copy()
    cloud[:, 80:320, 80:320] = white + 0.0 * ground[:, 80:320, 80:320]
    valid = np.ones(shape, bool)
    assert haze_mask(snow, valid, bands, 1.0).mean() > 0.5  # without the other epoch: flagged
    assert not haze_mask(snow, valid, bands, 1.0, other=ground).any()
    hazy = haze_mask(cloud, valid, bands, 1.0, other=ground)
    assert hazy[80:320, 80:320].all()
    assert np.array_equal(hazy, haze_mask(cloud, valid, bands, 1.0))


def test_tile_coverage_matches_the_overlap(tmp_path: Path) -> None:
    full = open_epoch([scene(tmp_path / "full.tif", collar=False)], name="before")
    tiles = plan_tiles(default_border(), km_range=(KM - 1.0, KM + 3.0), corridor_m=300, gsd_m=5)
    cov = tile_coverage(tiles, full, full)
    crs, x, y = border_xy()
    box = shapely.box(x - 600, y - 600, x + 600, y + 600)  # the scene, in its own UTM zone
    expected = [t.core.intersection(box).area / t.core.area for t in tiles]
    assert all(t.crs == crs for t in tiles)
    assert expected[-1] == 0.0 and cov[-1] == 0.0  # km 614-615 lies outside the scene
    assert max(expected) > 0.4
    np.testing.assert_allclose(cov, expected, atol=0.01)


# ---------------------------------------------------------------------- real data
def test_rgb_byte_onto_a_grid_in_another_crs(shared_data: Path) -> None:
    """The valid mask of the warped read agrees with the file's nodata collar (>= 98 %)."""
    from rasterio.warp import Resampling, reproject

    path = shared_data / "georef" / "RGB.byte.tif"
    epoch = open_epoch([path], name="before")
    src = epoch.sources[0]
    assert src.mask == "nodata" and src.band_names == ("red", "green", "blue")
    c = src.footprint.centroid
    from bordewatch.tiling import Tile

    crs = "EPSG:32617"  # the neighbouring UTM zone, rotated grid
    x, y = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(c.x, c.y)
    aff = Affine.translation(x - 60_000, y + 60_000) @ Affine.rotation(20) @ Affine.scale(600, -600)
    tile = Tile("t", 0, 0.0, 1.0, crs, tuple(aff)[:6], 250, 250, 600.0, shapely.box(0, 0, 1, 1))
    pair = read_pair(epoch, epoch, tile, auto_clouds=False)
    with rasterio.open(path) as ds:
        mask = np.zeros(tile.shape, np.uint8)
        reproject(
            ds.dataset_mask(),
            mask,
            src_transform=ds.transform,
            src_crs=ds.crs,
            dst_transform=aff,
            dst_crs=crs,
            resampling=Resampling.nearest,
        )
    agree = (pair.valid == (mask > 0)).mean()
    assert 0.2 < pair.valid.mean() < 0.9
    assert agree > 0.98


def test_joplin_pair_lands_on_one_grid(shared_data: Path) -> None:
    """pre (EPSG:26915, 0.6 m) and post (EPSG:4326) overlap by about half of pre's footprint."""
    d = shared_data / "georef" / "joplin"
    before = open_epoch([d / "pre.tif"], name="before")
    after = open_epoch([d / "post.tif"], name="after")
    fb, fa = before.sources[0].footprint, after.sources[0].footprint
    assert 0.45 < fb.intersection(fa).area / fb.area < 0.6
    assert target_gsd_m(before, after) == pytest.approx(0.6, abs=0.01)


# ---------------------------------------------------------------------- fast (affine) path
def _smooth_scene(path: Path, *, size: int = 300, gsd: float = 5.0, crs: str | None = None,
                  transform: Affine | None = None, collar: bool = True) -> Path:  # fmt: skip
    """A smooth uint16 RGBN scene around the border at KM (zero collar outside a disc)."""
    utm, x, y = border_xy()
    img = texture((size, size), 7, sigma=4.0) * 3000 + 500
    data = np.stack([img, img * 0.9, img * 0.8, img * 1.1]).astype(np.uint16)
    if collar:
        rr, cc = np.mgrid[:size, :size] - size / 2
        data[:, np.hypot(rr, cc) > size * 0.42] = 0
    if transform is None:
        transform = Affine(gsd, 0, x - size * gsd / 2, 0, -gsd, y + size * gsd / 2)
    return write_raster(path, data, crs=crs or utm, transform=transform, nbits=12)


def _edge_px(valid: np.ndarray) -> np.ndarray:
    """Pixels within 1 px of the boundary of ``valid``."""
    return ndimage.binary_dilation(valid, iterations=1) & ~ndimage.binary_erosion(valid)


@pytest.mark.parametrize("gsd", [5.0, 15.0])
def test_affine_path_matches_gdal_warp(tmp_path: Path, gsd: float) -> None:
    """Same CRS, rotated grid: at the source's GSD and 3x coarser (block-averaged first)."""
    epoch = open_epoch([_smooth_scene(tmp_path / "s.tif")], name="before")
    tile = plan_tiles(default_border(), km_range=(KM - 0.4, KM + 0.4), corridor_m=700, gsd_m=gsd)
    tile = next(t for t in tile if t.km_start <= KM < t.km_end)
    assert tile.affine.b != 0
    fast = read_pair(epoch, epoch, tile, auto_clouds=False)
    gdal = read_pair(epoch, epoch, tile, auto_clouds=False, engine="gdal")
    assert 0.2 < gdal.valid.mean() < 0.95  # the collar crosses the tile
    disagree = fast.valid != gdal.valid
    assert not (disagree & ~_edge_px(gdal.valid)).any()  # masks differ at most on the edge
    inner = ndimage.binary_erosion(fast.valid & gdal.valid, iterations=2)
    diff = np.abs(fast.before - gdal.before)[:, inner]
    assert diff.max() < (0.01 if gsd == 5.0 else 0.03)
    assert diff.mean() < 0.004


def test_affine_path_from_another_crs(tmp_path: Path) -> None:
    """A lon/lat source: the tile -> source mapping is fitted (affine to < 0.05 px) and used."""
    from bordewatch.imagery import _pixel_mapping

    crs, x, y = border_xy()
    lon, lat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    t = Affine(5e-5, 0, lon - 150 * 5e-5, 0, -4e-5, lat + 150 * 4e-5)
    epoch = open_epoch([_smooth_scene(tmp_path / "g.tif", crs="EPSG:4326", transform=t)], name="b")
    tile = plan_tiles(default_border(), km_range=(KM - 0.2, KM + 0.2), corridor_m=300, gsd_m=4)[0]
    assert _pixel_mapping(epoch.sources[0], tile) is not None
    fast = read_pair(epoch, epoch, tile, auto_clouds=False)
    gdal = read_pair(epoch, epoch, tile, auto_clouds=False, engine="gdal")
    inner = ndimage.binary_erosion(fast.valid & gdal.valid, iterations=2)
    assert inner.mean() > 0.3
    assert np.abs(fast.before - gdal.before)[:, inner].max() < 0.01
    assert (fast.valid != gdal.valid).mean() < 0.02
    # far from affine over a continent-sized grid: the GDAL warper takes over
    big = Tile("big", 0, 0.0, 1.0, "EPSG:3413", (5e4, 0, -3e6, 0, -5e4, 3e6), 120, 120, 5e4,
               shapely.box(0, 0, 1, 1))  # fmt: skip
    assert _pixel_mapping(epoch.sources[0], big) is None


def test_adjacent_files_leave_no_seam(tmp_path: Path) -> None:
    """A scene cut into two files reads like the whole file: no invalid seam between them.

    Valid where the valid neighbours carry >= half the bilinear weight: requiring all four
    would leave a 1-px invalid line between every two files of a tiled epoch.
    """
    crs, x, y = border_xy()
    img = (texture((200, 200), 9, sigma=4.0) * 200 + 30).astype(np.uint8)
    data = np.stack([img, img, img])
    t = Affine(5, 0, x - 500, 0, -5, y + 500)
    whole = write_raster(tmp_path / "whole.tif", data, crs=crs, transform=t)
    west = write_raster(tmp_path / "w.tif", data[:, :, :97].copy(), crs=crs, transform=t)
    east = write_raster(
        tmp_path / "e.tif", data[:, :, 97:].copy(), crs=crs, transform=t @ Affine.translation(97, 0)
    )
    tile = plan_tiles(default_border(), km_range=(KM - 0.2, KM + 0.2), corridor_m=200, gsd_m=5)[0]
    one = open_epoch([whole], name="before")
    two = open_epoch([west, east], name="before")
    a = read_pair(one, one, tile, auto_clouds=False)
    b = read_pair(two, two, tile, auto_clouds=False)
    assert a.valid.all() and b.valid.all()
    # only pixels between the files' last and first pixel centres differ (one-sided there)
    diff = np.abs(a.before - b.before).max(axis=0)
    assert (diff > 1e-5).mean() < 0.03
    assert diff.max() < 0.05


def test_decimated_read_does_not_alias(tmp_path: Path) -> None:
    """A 2-px checkerboard read onto a 5x coarser grid averages to grey, not a moire."""
    crs, x, y = border_xy()
    board = ((np.indices((500, 500)).sum(axis=0) % 2) * 200 + 20).astype(np.uint8)
    path = write_raster(
        tmp_path / "c.tif",
        np.stack([board] * 3),
        crs=crs,
        transform=Affine(1, 0, x - 250, 0, -1, y + 250),
    )
    epoch = open_epoch([path], name="before")
    tile = plan_tiles(default_border(), km_range=(KM - 0.1, KM + 0.1), corridor_m=100, gsd_m=5)[0]
    pair = read_pair(epoch, epoch, tile, auto_clouds=False)
    vals = pair.before[0][pair.valid]
    assert pair.valid.mean() > 0.5
    assert np.abs(vals - 120 / 255).max() < 0.03


@pytest.mark.parametrize("gsd", [5.0, 15.0])
def test_big_windows_are_read_in_row_chunks_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gsd: float
) -> None:
    """A window over the buffer limit is read in chunks of tile rows; values and validity
    (the collar crosses the chunk boundaries) are those of the one-buffer read."""
    from bordewatch import imagery

    epoch = open_epoch([_smooth_scene(tmp_path / "s.tif")], name="before")
    tiles = plan_tiles(default_border(), km_range=(KM - 0.4, KM + 0.4), corridor_m=700, gsd_m=gsd)
    tile = next(t for t in tiles if t.km_start <= KM < t.km_end)
    whole = read_pair(epoch, epoch, tile, auto_clouds=False)
    mapping = imagery._pixel_mapping(epoch.sources[0], tile)
    assert mapping is not None
    monkeypatch.setattr(imagery, "_READ_CHUNK_MIN_ROWS", 8)
    monkeypatch.setattr(imagery, "_READ_BUFFER_PX", 300)
    chunks = imagery._row_chunks(tile.width, tile.height, mapping)
    assert len(chunks) >= 3
    assert chunks[0][0] == 0 and chunks[-1][1] == tile.height
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
    chunked = read_pair(epoch, epoch, tile, auto_clouds=False)
    assert 0.2 < whole.valid.mean() < 0.95
    np.testing.assert_array_equal(chunked.valid, whole.valid)
    # the same bilinear taps; only the float32 rounding of the normalised grid differs
    np.testing.assert_allclose(chunked.before, whole.before, rtol=0, atol=1e-4)


def test_bad_engine_is_refused(tmp_path: Path) -> None:
    epoch = open_epoch([scene(tmp_path / "a.tif")], name="before")
    tile = plan_tiles(default_border(), km_range=(KM - 0.1, KM + 0.1), corridor_m=100, gsd_m=5)[0]
    with pytest.raises(ValueError, match="engine"):
        read_pair(epoch, epoch, tile, engine="fast")


@pytest.mark.parametrize(
    ("layout", "size"),
    [
        ({"tiled": True, "blockxsize": 128, "blockysize": 128}, (1301, 777)),
        ({"tiled": False, "blockysize": 3}, (700, 1299)),
        ({"tiled": False, "blockysize": 1}, (2000, 513)),
    ],
)
def test_footprint_read_in_strips_equals_one_decimated_read(
    tmp_path: Path, layout: dict, size: tuple[int, int]
) -> None:
    """Without overviews the low-res read goes strip by strip (GDAL's block cache would hold
    the whole file); it picks the same pixels as one decimated read, for data and masks."""
    from rasterio.enums import Resampling

    from bordewatch import imagery

    rng = np.random.default_rng(3)
    h, w = size
    data = rng.integers(1, 4000, (3, h, w), dtype=np.uint16)
    path = tmp_path / "big.tif"
    crs, x, y = border_xy()
    profile = dict(
        driver="GTiff", width=w, height=h, count=3, dtype="uint16", crs=crs,
        transform=Affine(1, 0, x, 0, -1, y), **layout,
    )  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.write_mask(np.where(rng.random((h, w)) < 0.3, 0, 255).astype(np.uint8))
    near = Resampling.nearest
    with rasterio.open(path) as src:
        assert not src.overviews(1)
        f = max(w, h) / imagery._PROBE_PX
        shape = (max(1, round(h / f)), max(1, round(w / f)))
        ref = src.read(out_shape=(3, *shape), resampling=near)
        ref_mask = src.read_masks(1, out_shape=shape, resampling=near)
        got = imagery._decimated(
            src, shape, lambda win, s: src.read(window=win, out_shape=(3, *s), resampling=near)
        )
        got_mask = imagery._decimated(
            src, shape, lambda win, s: src.read_masks(1, window=win, out_shape=s, resampling=near)
        )
    assert got.shape == ref.shape and got.dtype == ref.dtype
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got_mask, ref_mask)
