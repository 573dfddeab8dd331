"""The resume cache: JSON round trip, keys, damaged files, resume checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely

from bordewatch.cache import (
    RUN_KEY_FILE,
    TileCache,
    check_resume,
    file_identity,
    result_from_json,
    result_to_json,
    run_key,
)
from bordewatch.errors import ResumeMismatchError
from bordewatch.results import Detection, TileResult


def _result(change: str | None = "/somewhere/else/T-0001.000-k.change.tif") -> TileResult:
    return TileResult(
        tile_id="T-0001.000",
        crs="EPSG:32652",
        method="classical",
        detections=(
            Detection("watchtower", "new", 0.8125, shapely.Point(500001.25, 4650000.5)),
            Detection(
                "fence", "upgraded", 1 / 3, shapely.LineString([(0, 0), (10.1, 0.000001), (20, 5)])
            ),
        ),
        analysed=shapely.box(0, 0, 1000, 2000),
        analysed_fraction=0.97,
        shift_px=(0.25, -1.5),
        shift_quality=0.9,
        change_path=change,
        seconds=1.5,
        info={"sun_azimuth_deg": [135.0, None], "bands": ("red", "green")},
    )


def test_round_trip_is_exact(tmp_path: Path) -> None:
    res = _result()
    back = result_from_json(result_to_json(res), tmp_path)
    assert back.detections == res.detections  # shapely equality is exact on coordinates
    assert back.analysed.equals_exact(res.analysed, 0.0)
    assert (back.shift_px, back.shift_quality, back.analysed_fraction) == (
        res.shift_px,
        res.shift_quality,
        res.analysed_fraction,
    )
    assert back.change_path == str(tmp_path / "T-0001.000-k.change.tif")  # relative to the cache
    assert back.info == {"sun_azimuth_deg": [135.0, None], "bands": ["red", "green"]}
    assert result_to_json(back) == result_to_json(res)  # canonical after one round trip


def test_cache_file_is_plain_json_with_wkb(tmp_path: Path) -> None:
    cache = TileCache(tmp_path, "abc")
    cache.store(_result())
    record = json.loads(cache.path("T-0001.000").read_text())
    assert record["detections"][0]["wkb"] == shapely.Point(500001.25, 4650000.5).wkb_hex
    assert cache.path("T-0001.000").name == "T-0001.000-abc.json"


def test_store_then_load_and_done(tmp_path: Path) -> None:
    cache = TileCache(tmp_path, "abc")
    stored = cache.store(_result())
    assert cache.load("T-0001.000") == stored
    assert set(cache.done(["T-0001.000", "T-0002.000"])) == {"T-0001.000"}
    assert TileCache(tmp_path, "other").load("T-0001.000") is None  # other key, other file


def test_damaged_or_foreign_file_is_recomputed(tmp_path: Path) -> None:
    cache = TileCache(tmp_path, "abc")
    cache.store(_result())
    cache.path("T-0001.000").write_text('{"format": 1, "tile_id": ')  # truncated
    assert cache.load("T-0001.000") is None
    cache.path("T-0001.000").write_bytes(b"\x80\x04\x95pickle")
    assert cache.load("T-0001.000") is None


def test_no_temporary_files_left(tmp_path: Path) -> None:
    cache = TileCache(tmp_path, "abc")
    cache.store(_result())
    assert [p.name for p in tmp_path.iterdir()] == ["T-0001.000-abc.json"]


def test_run_key_depends_on_every_part(tmp_path: Path) -> None:
    f = tmp_path / "a.tif"
    f.write_bytes(b"1234")
    inputs = {"before": [file_identity(f)]}
    key = run_key(inputs, {"corridor_m": 1000.0})
    assert key == run_key(inputs, {"corridor_m": 1000.0})
    assert key != run_key(inputs, {"corridor_m": 2000.0})
    f.write_bytes(b"12345")
    assert key != run_key({"before": [file_identity(f)]}, {"corridor_m": 1000.0})


def test_check_resume_names_the_differing_parameter(tmp_path: Path) -> None:
    inputs = {"before": [{"path": "/a.tif", "bytes": 4, "mtime_ns": 1}]}
    params = {"corridor_m": 1000.0, "side": "both", "detect": {"method": "classical"}}
    cache = TileCache(tmp_path / ".tiles", run_key(inputs, params))
    cache.prepare(inputs, params)
    assert (cache.directory / RUN_KEY_FILE).is_file()
    check_resume(cache.directory, inputs, params)  # same: fine
    with pytest.raises(ResumeMismatchError, match=r"side = \"both\", this run has \"left\""):
        check_resume(cache.directory, inputs, {**params, "side": "left"})
    with pytest.raises(ResumeMismatchError, match="detect"):
        check_resume(cache.directory, inputs, {**params, "detect": {"method": "model"}})
    other = {"before": [{"path": "/a.tif", "bytes": 5, "mtime_ns": 1}]}
    with pytest.raises(ResumeMismatchError, match=r"inputs\.before"):
        check_resume(cache.directory, other, params)


def test_check_resume_without_a_previous_run_is_fine(tmp_path: Path) -> None:
    check_resume(tmp_path / "nothing", {}, {})
