"""Tile planning along the border: cores partition the corridor, rotated grids, coverage, CLI."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from bordewatch.border import Border, default_border
from bordewatch.cli.main import cli
from bordewatch.errors import TileError
from bordewatch.tiling import plan_tiles, tile_count, tiles_frame

sys.path.insert(0, str(Path(__file__).parent))
from test_imagery import KM, scene


def grid_polygon(tile) -> shapely.Polygon:  # type: ignore[no-untyped-def]
    a = tile.affine
    return shapely.Polygon(
        [a @ (0, 0), a @ (tile.width, 0), a @ (tile.width, tile.height), a @ (0, tile.height)]
    )


@pytest.mark.parametrize("km", [(600.0, 608.0), (95.0, 99.5), (300.0, 305.0)])
def test_cores_partition_the_corridor(km: tuple[float, float]) -> None:
    border = default_border()
    tiles = plan_tiles(border, km_range=km, corridor_m=1000, gsd_m=2.0)
    assert tiles[0].km_start == km[0] and tiles[-1].km_end == km[1]
    assert all(a.km_end == b.km_start for a, b in itertools.pairwise(tiles))
    assert tiles[0].id == f"{border.name}-{km[0]:08.3f}"
    same = [t for t in tiles if t.crs == tiles[0].crs]
    union = shapely.union_all([t.core for t in same])
    assert sum(t.core.area for t in same) == pytest.approx(union.area, rel=1e-6)  # no overlap
    piece = border.line_in(tiles[0].crs, (same[0].km_start, same[-1].km_end))
    corridor = shapely.buffer(piece, 1000, cap_style="flat", quad_segs=16)
    assert union.symmetric_difference(corridor).area < 0.005 * corridor.area  # full cover
    for t in tiles:
        assert grid_polygon(t).buffer(1e-6).contains(t.core)
        assert t.width * t.height * 4.0 <= 2.0 * t.core.area  # pixels per km <= 2x corridor


def test_grid_is_rotated_along_a_diagonal_border() -> None:
    line = shapely.LineString([(125.0, 40.0), (125.1, 40.08)])  # runs north-east
    tiles = plan_tiles(Border(line, name="diag"), corridor_m=500, gsd_m=1.0, overlap_m=0)
    t = tiles[3]
    assert t.affine.b != 0 and t.affine.d != 0
    assert t.width == pytest.approx(1000, abs=3) and t.height == pytest.approx(1000, abs=3)


def test_one_side_only() -> None:
    border = default_border()
    for side, sign in (("left", 1), ("right", -1)):
        tiles = plan_tiles(border, km_range=(610, 613), side=side, corridor_m=800, gsd_m=4)
        c = shapely.union_all([tiles[1].core]).representative_point()
        from bordewatch.tiling import _to_lonlat

        p = _to_lonlat(c, tiles[1].crs)
        _, off, _ = border.locate([p.x], [p.y])
        assert np.sign(off[0]) == sign
        assert tiles[1].core.area == pytest.approx(800_000, rel=0.1)


@pytest.mark.parametrize(
    "kwargs",
    [{"side": "up"}, {"tile_km": 0}, {"gsd_m": -1.0}, {"corridor_m": float("nan")}],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(TileError):
        plan_tiles(default_border(), km_range=(0, 2), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("km", "tile_km"),
    [
        ((600.0, 608.0), 1.0),
        ((95.0, 99.5), 1.0),
        ((10.0, 12.0), 0.5),
        ((10.0, 17.3), 2.5),
        ((1000.0, 5000.0), 1.0),
        (None, 100.0),
    ],
)
def test_tile_count_is_the_number_planned(km: tuple[float, float] | None, tile_km: float) -> None:
    border = default_border()
    tiles = plan_tiles(border, km_range=km, tile_km=tile_km, corridor_m=200, gsd_m=50.0)
    assert tile_count(border, km_range=km, tile_km=tile_km) == len(tiles) > 0


def test_tile_count_of_an_empty_range_or_a_bad_size_is_zero() -> None:
    border = default_border()
    assert tile_count(border, km_range=(5.0, 5.0)) == 0
    assert tile_count(border, km_range=(5.0, 6.0), tile_km=0.0) == 0


def test_tiles_frame_columns() -> None:
    tiles = plan_tiles(default_border(), km_range=(10, 12.5), corridor_m=300, gsd_m=1)
    frame = tiles_frame(tiles, [0.5, 1.0, 0.0])
    assert list(frame.columns[:-1]) == [
        "id", "km_start", "km_end", "crs", "gsd_m", "width", "height", "coverage"
    ]  # fmt: skip
    assert frame.crs.to_epsg() == 4326 and len(frame) == 3
    assert frame.km_end.iloc[-1] == 12.5 and frame.coverage.tolist() == [0.5, 1.0, 0.0]


def test_cli_tiles_writes_plan_and_summary(tmp_path: Path) -> None:
    before = scene(tmp_path / "b.tif", rng=1)
    after = scene(tmp_path / "a.tif", rng=2)
    out = tmp_path / "tiles.geojson"
    args = ["tiles", "--before", str(before), "--after", str(after), "--out", str(out)]
    args += ["--km", f"{KM - 2}:{KM + 2}", "--corridor-m", "300"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert res.output.startswith("imagery covers ") and res.output.strip().endswith("; 2 tiles")
    covered = float(res.output.split()[2])
    assert 0.4 < covered < 1.3 and " of 4.0 km" in res.output
    data = json.loads(out.read_text())
    assert len(data["features"]) == 4
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "exists" in again.output


def test_cli_tiles_imagery_off_the_corridor(tmp_path: Path) -> None:
    before = scene(tmp_path / "b.tif", rng=1)
    out = tmp_path / "tiles.geojson"
    args = ["tiles", "--before", str(before), "--after", str(before), "--out", str(out)]
    res = CliRunner().invoke(cli, [*args, "--km", "100:103"])
    assert res.exit_code == 1
    assert "b.tif" in res.output and "nearest border km 612" in res.output
    assert not out.exists()
