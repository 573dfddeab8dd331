"""outputs.replace_gpkg_layer: one layer rewritten, the rest of the GeoPackage kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from bordewatch.outputs import replace_gpkg_layer, write_gpkg

CRS = "EPSG:32652"


def _frame(values: list[int], x0: float = 500000.0) -> gpd.GeoDataFrame:
    pts = [shapely.Point(x0 + 10 * v, 4600000.0) for v in values]
    return gpd.GeoDataFrame({"n": values}, geometry=pts, crs=CRS)


def _styles(path: Path) -> list[str]:
    with sqlite3.connect(path) as con:
        return [r[0] for r in con.execute("SELECT f_table_name FROM layer_styles ORDER BY id")]


def test_only_the_named_layer_changes(tmp_path: Path) -> None:
    gpkg = tmp_path / "bordewatch.gpkg"
    write_gpkg(gpkg, {"detections": _frame([1, 2, 3]), "segments": _frame([7])}, crs=CRS)
    assert _styles(gpkg) == ["detections", "segments"]
    replace_gpkg_layer(gpkg, "segments", _frame([8, 9]).to_crs("EPSG:4326"), crs=CRS)
    segs = gpd.read_file(gpkg, layer="segments")
    assert segs["n"].tolist() == [8, 9]
    assert segs.crs.to_epsg() == 32652  # written in the file's metric CRS
    assert segs.geometry.x.round(3).tolist() == [500080.0, 500090.0]
    assert gpd.read_file(gpkg, layer="detections")["n"].tolist() == [1, 2, 3]
    assert _styles(gpkg) == ["detections", "segments"]  # no duplicate style rows
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_new_layer_gets_its_style(tmp_path: Path) -> None:
    gpkg = tmp_path / "bordewatch.gpkg"
    write_gpkg(gpkg, {"detections": _frame([1])}, crs=CRS)
    replace_gpkg_layer(gpkg, "segments", _frame([4]), crs=CRS)
    assert _styles(gpkg) == ["detections", "segments"]


def test_a_failed_rewrite_leaves_the_file_whole(tmp_path: Path, monkeypatch) -> None:
    from bordewatch import outputs

    gpkg = tmp_path / "bordewatch.gpkg"
    write_gpkg(gpkg, {"detections": _frame([1, 2])}, crs=CRS)
    before = gpkg.read_bytes()

    def interrupted(path, *args, **kwargs):
        Path(path).write_bytes(b"half a file")  # the copy is damaged, then the write fails
        raise OSError("disk went away")

    monkeypatch.setattr(outputs, "_write_layer", interrupted)
    with pytest.raises(OSError, match="disk went away"):
        replace_gpkg_layer(gpkg, "segments", _frame([3]), crs=CRS)
    assert gpkg.read_bytes() == before
    assert not list(tmp_path.glob(".tmp-*"))
