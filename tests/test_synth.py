"""Tests of the synthetic scene generator (bordewatch.synth, ``bordewatch synth``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyproj
import pytest
import rasterio
import shapely
from click.testing import CliRunner
from rasterio.warp import transform_bounds

from bordewatch.border import default_border
from bordewatch.cli.main import cli
from bordewatch.errors import BordewatchError, OutputExistsError
from bordewatch.synth import SceneFiles, get_preset, make_scene, render_pair
from bordewatch.synth.geo import OUTPUT_NAMES
from bordewatch.synth.noise import fbm_grid, fbm_points, noise_grid, noise_points
from bordewatch.synth.presets import QUIET

SMALL = {"km_range": (815.0, 815.5), "corridor_m": 200.0}
CHANGED = ("new", "upgraded", "removed")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> SceneFiles:
    return make_scene(tmp_path_factory.mktemp("scene"), rng=5, **SMALL)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ in-memory pairs
def test_render_pair_shapes_and_ranges() -> None:
    pair = render_pair(size_px=(96, 128), rng=1, bands=("nir", "red"))
    assert pair.before.shape == pair.after.shape == (2, 96, 128)
    assert pair.before.dtype == np.float32
    assert pair.valid.shape == pair.prk_mask.shape == (96, 128)
    assert 0.0 <= pair.before.min() and pair.after.max() <= 1.0
    assert pair.bands == ("nir", "red")
    assert 0 < pair.prk_mask.mean() < 1


def test_render_pair_is_deterministic_and_seed_dependent() -> None:
    a, b = render_pair(size_px=(64, 64), rng=7), render_pair(size_px=(64, 64), rng=7)
    c = render_pair(size_px=(64, 64), rng=8)
    assert np.array_equal(a.before, b.before) and np.array_equal(a.after, b.after)
    assert [t.geometry.wkt for t in a.truth] == [t.geometry.wkt for t in b.truth]
    assert not np.array_equal(a.before, c.before)


def test_truth_on_prk_side_and_inside_window() -> None:
    pair = render_pair(size_px=(256, 256), rng=2)
    assert pair.truth
    box = shapely.box(0, 0, 256, 256)
    for t in pair.truth:
        assert box.covers(t.geometry)
        p = t.geometry.centroid if t.cls != "watchtower" else t.geometry
        assert pair.prk_mask[min(int(p.y), 255), min(int(p.x), 255)], t


@pytest.mark.parametrize("seed", [3, 4, 11])
def test_status_matches_what_was_drawn(seed: int) -> None:
    """Without nuisance change, before and after differ only around changed infrastructure."""
    pair = render_pair(size_px=(256, 256), rng=seed, preset=get_preset("demo", **QUIET))
    changed = np.abs(pair.after - pair.before).max(axis=0) > 0.02
    near = (
        pair.truth_mask("fence", CHANGED, width_px=12)
        | pair.truth_mask("patrol_lane", CHANGED, width_px=12)
        | pair.truth_mask("watchtower", ("new", "removed"), width_px=24)
    )
    assert (changed & ~near).mean() < 0.002
    for t in pair.truth:
        single = type(pair)(
            **{**{f: getattr(pair, f) for f in pair.__dataclass_fields__}, "truth": (t,)}
        )
        m = single.truth_mask(t.cls, width_px=1.0 if t.cls != "watchtower" else 2.0)
        if not m.any():
            continue
        drawn_b, drawn_a = pair.drawn[t.cls]
        before, after = drawn_b[m].mean(), drawn_a[m].mean()
        if t.status == "new":
            assert before < 0.02 < after, t
        elif t.status == "removed":
            assert after < 0.02 < before, t
        else:
            assert before > 0.02 and after > 0.02, t


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nothing_new_has_only_existing_truth(seed: int) -> None:
    pair = render_pair(size_px=(192, 192), rng=seed, preset="nothing_new")
    assert {t.status for t in pair.truth} <= {"existing"}
    for before, after in pair.drawn.values():
        assert np.array_equal(before > 0.05, after > 0.05)


def test_noise_grid_matches_points() -> None:
    xs = np.arange(40) * 1.5 + 3.25
    ys = 900.0 - np.arange(30) * 1.5
    gx, gy = np.meshgrid(xs, ys)
    assert np.allclose(noise_grid(xs, ys, 7.0, 3), noise_points(gx, gy, 7.0, 3), atol=1e-5)
    assert np.allclose(
        fbm_grid(xs, ys, (30.0, 5.0), 4), fbm_points(gx, gy, (30.0, 5.0), 4), atol=1e-5
    )


def test_render_pair_rejects_bad_input() -> None:
    with pytest.raises(BordewatchError, match="band"):
        render_pair(size_px=(32, 32), bands=("swir",))
    with pytest.raises(BordewatchError, match="preset"):
        render_pair(size_px=(32, 32), preset="nope")


# ------------------------------------------------------------------------------ georeferenced scenes
def test_scene_files_and_schema(scene: SceneFiles) -> None:
    for name in OUTPUT_NAMES:
        assert (scene.out_dir / name).is_file()
    truth = json.loads(scene.truth.read_text())
    assert truth["type"] == "FeatureCollection" and truth["features"]
    props = truth["features"][0]["properties"]
    for key in (
        "id",
        "class",
        "status",
        "score",
        "km",
        "offset_m",
        "length_m",
        "tile",
        "method",
        "observable",
    ):
        assert key in props
    meta = json.loads(scene.scene_json.read_text())
    assert meta["seed"] is not None and meta["params"]["preset"] == "demo"
    with rasterio.open(scene.before) as ds:
        assert ds.profile["tiled"] and ds.compression.name.lower() == "zstd"
        assert ds.nodata == 0 and ds.overviews(1)
        assert ds.descriptions == ("red", "green", "blue", "nir")


def test_scene_truth_inside_scene_and_on_prk_side(scene: SceneFiles) -> None:
    truth = json.loads(scene.truth.read_text())["features"]
    border = default_border()
    with rasterio.open(scene.before) as ds:
        west, south, east, north = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    for f in truth:
        coords = np.atleast_2d(np.asarray(f["geometry"]["coordinates"]))
        assert (coords[:, 0] >= west).all() and (coords[:, 0] <= east).all()
        assert (coords[:, 1] >= south).all() and (coords[:, 1] <= north).all()
        p = f["properties"]
        assert 815.0 - 0.25 <= p["km"] <= 815.5 + 0.25
        assert p["offset_m"] < 0, "infrastructure belongs on the PRK (right) side"
        assert abs(p["offset_m"]) <= 200.0 + 1.0
        _km, _off, side = border.locate(coords[:1, 0], coords[:1, 1])
        assert side[0] == "right"


def test_scene_is_byte_identical_for_one_seed(scene: SceneFiles, tmp_path: Path) -> None:
    again = make_scene(tmp_path / "again", rng=5, **SMALL)  # type: ignore[arg-type]
    for name in OUTPUT_NAMES:
        assert (scene.out_dir / name).read_bytes() == (again.out_dir / name).read_bytes(), name


def test_existing_outputs_are_refused(scene: SceneFiles) -> None:
    with pytest.raises(OutputExistsError, match="overwrite"):
        make_scene(scene.out_dir, rng=5, **SMALL)  # type: ignore[arg-type]


def test_after_crs_uint16_rgb_round_trip(tmp_path: Path) -> None:
    files = make_scene(
        tmp_path / "s",
        rng=2,
        after_crs="EPSG:4326",
        dtype="uint16",
        bands="rgb",
        **SMALL,  # type: ignore[arg-type]
    )
    with rasterio.open(files.before) as b, rasterio.open(files.after) as a:
        assert a.crs == pyproj.CRS.from_epsg(4326) and b.crs.to_epsg() != 4326
        assert a.count == b.count == 3 and a.dtypes[0] == b.dtypes[0] == "uint16"
        before_ll = shapely.box(*transform_bounds(b.crs, "EPSG:4326", *b.bounds))
        assert before_ll.intersection(shapely.box(*a.bounds)).area > 0.5 * before_ll.area
        data = b.read()
    assert data.max() <= 4095 and data.max() > 255
    assert (data == 0).any()  # nodata outside the corridor


def test_cli_synth(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = ["synth", "--out", str(out), "--km", "815:815.4", "--corridor-m", "150", "--seed", "3"]
    result = CliRunner().invoke(cli, [*args, "--preset", "nothing_new"])
    assert result.exit_code == 0, result.output
    truth = json.loads((out / "truth.geojson").read_text())["features"]
    assert {f["properties"]["status"] for f in truth} <= {"existing"}
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "overwrite" in again.output
