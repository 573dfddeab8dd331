"""Evaluation against ground truth: exact precision/recall on hand-made cases, files and CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from click.testing import CliRunner

from bordewatch import outputs
from bordewatch.border import Border
from bordewatch.cli.main import cli
from bordewatch.errors import RunFolderError, TruthError
from bordewatch.evaluate import evaluate, evaluate_run, match_points, read_truth

CRS = "EPSG:32652"  # the zone evaluate picks for these coordinates: lengths are exact
X0, Y0 = 500_000.0, 4_650_000.0


def _frame(
    rows: list[tuple[str, str, shapely.Geometry]], **extra: list[object]
) -> gpd.GeoDataFrame:
    geoms = [shapely.transform(g, lambda xy: xy + np.array([X0, Y0])) for _, _, g in rows]
    data = {"class": [r[0] for r in rows], "status": [r[1] for r in rows], **extra}
    return gpd.GeoDataFrame(data, geometry=geoms, crs=CRS)


def _line(*xy: tuple[float, float]) -> shapely.LineString:
    return shapely.LineString(xy)


def _pt(x: float, y: float = 100.0) -> shapely.Point:
    return shapely.Point(x, y)


def test_lines_length_based() -> None:
    truth = _frame([("fence", "new", _line((0, 0), (100, 0)))])
    pred = _frame(
        [
            ("fence", "new", _line((0, 0), (50, 0))),  # on the truth
            ("fence", "new", _line((200, 0), (230, 0))),  # 100 m beyond its end
        ]
    )
    s = evaluate(pred, truth).score("fence")
    assert s.pred_m == pytest.approx(80.0)
    assert s.truth_m == pytest.approx(100.0)
    assert s.precision == pytest.approx(50 / 80)
    assert s.recall == pytest.approx(55 / 100)  # 50 m + the 5 m buffer's round cap
    assert s.f1 == pytest.approx(2 * 0.625 * 0.55 / (0.625 + 0.55))
    assert s.kind == "line" and s.n_pred == 2 and s.n_truth == 1 and s.n_matched == 1


def test_lines_parallel_within_buffer() -> None:
    truth = _frame([("patrol_lane", "new", _line((0, 0), (100, 0)))])
    pred = _frame([("patrol_lane", "new", _line((0, 4), (100, 4)))])
    s = evaluate(pred, truth).score("patrol_lane")
    assert s.precision == pytest.approx(1.0) and s.recall == pytest.approx(1.0)
    s6 = evaluate(pred, truth, buffer_m=3.0).score("patrol_lane")
    assert s6.precision == 0.0 and s6.recall == 0.0 and s6.f1 == 0.0


def test_points_hungarian_one_to_one() -> None:
    # Greedy nearest-first would pair P1 with T1 and leave P2 alone; the optimum pairs both.
    truth = _frame([("watchtower", "new", _pt(0)), ("watchtower", "new", _pt(5.5))])
    pred = _frame([("watchtower", "new", _pt(1)), ("watchtower", "new", _pt(-3.9))])
    s = evaluate(pred, truth).score("watchtower")
    assert s.n_matched == 2 and s.precision == 1.0 and s.recall == 1.0 and s.f1 == 1.0


def test_points_counts() -> None:
    truth = _frame([("watchtower", "new", _pt(x)) for x in (0, 50, 100)])
    pred = _frame([("watchtower", "new", _pt(x)) for x in (3, 52, 49, 200)])
    s = evaluate(pred, truth).score("watchtower")
    assert (s.n_matched, s.n_pred, s.n_truth) == (2, 4, 3)
    assert s.precision == 0.5 and s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_match_points_tolerance_is_inclusive() -> None:
    assert match_points(np.array([[5.0, 0.0]]), np.array([[0.0, 0.0]]), 5.0) == [(0, 0)]
    assert match_points(np.array([[5.1, 0.0]]), np.array([[0.0, 0.0]]), 5.0) == []


def test_status_filter() -> None:
    truth = _frame([("fence", "new", _line((0, 0), (100, 0)))])
    pred = _frame(
        [
            ("fence", "new", _line((0, 0), (100, 0))),
            ("fence", "existing", _line((0, 50), (100, 50))),
        ]
    )
    assert evaluate(pred, truth).score("fence").precision == pytest.approx(1.0)
    assert evaluate(pred, truth, status="all").score("fence").precision == pytest.approx(0.5)
    with pytest.raises(ValueError, match="status"):
        evaluate(pred, truth, status="bogus")


def test_unobservable_truth_is_ignored_on_both_sides() -> None:
    truth = _frame(
        [
            ("watchtower", "new", _pt(0)),
            ("watchtower", "new", _pt(1000)),  # under a cloud
            ("fence", "new", _line((0, 0), (100, 0))),
            ("fence", "new", _line((0, 300), (100, 300))),  # under a cloud
        ],
        observable=[True, False, True, False],
    )
    pred = _frame(
        [
            ("watchtower", "new", _pt(1)),
            ("watchtower", "new", _pt(1001)),  # matches hidden truth: neither TP nor FP
            ("fence", "new", _line((0, 0), (100, 0))),
            ("fence", "new", _line((0, 301), (100, 301))),  # along hidden truth: ignored
        ]
    )
    ev = evaluate(pred, truth)
    tower, fence = ev.score("watchtower"), ev.score("fence")
    assert (tower.n_pred, tower.n_truth, tower.precision, tower.recall) == (1, 1, 1.0, 1.0)
    assert fence.pred_m == pytest.approx(100.0) and fence.precision == pytest.approx(1.0)
    assert ev.n_truth_excluded == 2


def test_include_area_clips_both_sides() -> None:
    truth = _frame([("fence", "new", _line((0, 0), (100, 0)))])
    pred = _frame([("fence", "new", _line((0, 0), (40, 0)))])
    box = shapely.box(X0 - 10, Y0 - 10, X0 + 50, Y0 + 10)
    tf = pyproj.Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    area = shapely.transform(
        shapely.segmentize(box, 1.0), lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1]))
    )
    s = evaluate(pred, truth, include=area).score("fence")
    assert s.truth_m == pytest.approx(50.0, abs=0.01)
    assert s.recall == pytest.approx(45 / 50, abs=1e-3)
    assert evaluate(pred, truth, exclude=area).score("fence").pred_m == pytest.approx(0.0)


def test_empty_sides_give_nan_or_zero() -> None:
    truth = _frame([("fence", "new", _line((0, 0), (100, 0)))])
    empty = truth.iloc[:0]
    s = evaluate(empty, truth).score("fence")
    assert math.isnan(s.precision) and s.recall == 0.0 and s.f1 == 0.0
    t = evaluate(empty, empty).score("watchtower")
    assert math.isnan(t.precision) and math.isnan(t.recall) and math.isnan(t.f1)


def test_an_empty_detections_file_scores_as_nothing_found(tmp_path: Path) -> None:
    """An empty FeatureCollection reads back without property columns; that is no detection."""
    truth = _frame([("fence", "new", _line((0, 0), (100, 0))), ("watchtower", "new", _pt(5))])
    path = tmp_path / "empty.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}')
    ev = evaluate(gpd.read_file(path), truth)
    assert ev.score("fence").recall == 0.0 and ev.score("watchtower").n_truth == 1
    assert ev.score("watchtower").n_pred == 0


def test_per_km_from_km_property() -> None:
    truth = _frame(
        [("fence", "new", _line((0, 0), (100, 0))), ("watchtower", "new", _pt(0))],
        km=[0.5, 2.5],
    )
    pred = _frame([("fence", "new", _line((0, 0), (80, 0)))], km=[0.4])
    ev = evaluate(pred, truth, km_range=(0.0, 4.0))
    assert [(k.km_start, k.km_end) for k in ev.per_km] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert [k.fence_m_pred for k in ev.per_km] == pytest.approx([80, 0, 0, 0])
    assert [k.towers_truth for k in ev.per_km] == [0, 0, 1, 0]
    assert ev.fence_m_per_km_mae == pytest.approx(20 / 4)
    assert ev.towers_per_km_mae == pytest.approx(1 / 4)
    assert ev.fence_m_per_km_pred == pytest.approx(80 / 4)
    assert ev.fence_m_total_truth == pytest.approx(100.0) and ev.towers_total_pred == 0


def test_per_km_split_along_border() -> None:
    tf = pyproj.Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lon, lat = tf.transform([X0 - 100, X0 + 3000], [Y0, Y0])
    border = Border(shapely.LineString(list(zip(lon, lat))), name="t")
    truth = _frame([("fence", "new", _line((400, 20), (1600, 20)))])
    ev = evaluate(truth, truth, border=border, km_range=(0.0, 3.0))
    assert [k.fence_m_truth for k in ev.per_km] == pytest.approx([500, 700, 0], abs=2.0)


# ---------------------------------------------------------------------- files and CLI
def _run_dir(tmp_path: Path) -> tuple[Path, Path]:
    run = tmp_path / "run"
    truth = _frame(
        [
            ("fence", "new", _line((0, 0), (100, 0))),
            ("watchtower", "new", _pt(0)),
            ("watchtower", "new", _pt(5000)),  # outside the analysed tiles
            ("watchtower", "existing", _pt(300)),
        ]
    )
    pred = _frame(
        [
            ("fence", "new", _line((0, 1), (100, 1))),
            ("watchtower", "new", _pt(2)),
            ("watchtower", "new", _pt(60)),
        ]
    )
    for frame in (truth, pred):
        frame["km"] = 0.5
    pred = pred.to_crs("EPSG:4326")
    pred["id"] = [f"d{i}" for i in range(len(pred))]
    outputs.write_geojson(pred, run / "detections.geojson")
    tf = pyproj.Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lon, lat = tf.transform([X0 - 500, X0 + 6000], [Y0 - 50, Y0 - 50])
    border = Border(shapely.LineString(list(zip(lon, lat))), name="t")
    tiles = gpd.GeoDataFrame(
        {
            "id": ["a", "b"],
            "km_start": [0.0, 1.0],
            "km_end": [1.0, 2.0],
            "analysed_fraction": [1.0, 0.0],
            "status": ["done", "done"],
        },
        geometry=[
            shapely.box(X0 - 500, Y0 - 500, X0 + 500, Y0 + 500),
            shapely.box(X0 + 500, Y0 - 500, X0 + 5500, Y0 + 500),
        ],
        crs=CRS,
    )
    outputs.write_gpkg(
        run / "bordewatch.gpkg", {"tiles": tiles, "border": border.to_geodataframe()}, crs=CRS
    )
    truth_path = tmp_path / "truth.geojson"
    outputs.write_geojson(truth.to_crs("EPSG:4326"), truth_path)
    return run, truth_path


def test_evaluate_run_writes_json(tmp_path: Path) -> None:
    run, truth_path = _run_dir(tmp_path)
    ev = evaluate_run(run, truth_path)
    tower = ev.score("watchtower")
    assert (tower.n_truth, tower.n_pred, tower.n_matched) == (1, 2, 1)
    assert ev.n_truth_excluded == 1  # the tower in the tile with nothing analysed
    assert ev.score("fence").precision == pytest.approx(1.0, abs=1e-3)
    doc = json.loads((run / "evaluation.json").read_text())
    assert doc["status"] == "new" and doc["truth"] == str(truth_path)
    assert [c["cls"] for c in doc["classes"]] == ["fence", "patrol_lane", "watchtower"]
    assert doc["classes"][1]["precision"] is None  # no patrol lanes on either side
    assert len(doc["per_km"]) == 2
    first = (run / "evaluation.json").read_bytes()
    evaluate_run(run, truth_path)
    assert (run / "evaluation.json").read_bytes() == first


def test_cli_evaluate(tmp_path: Path) -> None:
    run, truth_path = _run_dir(tmp_path)
    res = CliRunner().invoke(
        cli, ["evaluate", "--run", str(run), "--truth", str(truth_path), "--status", "all"]
    )
    assert res.exit_code == 0, res.output
    assert "watchtower" in res.output and str(run / "evaluation.json") in res.output
    assert json.loads((run / "evaluation.json").read_text())["status"] == "all"
    bad = CliRunner().invoke(
        cli, ["evaluate", "--run", str(run), "--truth", str(tmp_path / "no.geojson")]
    )
    assert bad.exit_code == 1 and "no.geojson" in bad.output and "Traceback" not in bad.output


def test_truth_errors(tmp_path: Path) -> None:
    with pytest.raises(TruthError, match="not found"):
        read_truth(tmp_path / "missing.geojson")
    broken = tmp_path / "broken.geojson"
    broken.write_text("{not json")
    with pytest.raises(TruthError, match=r"broken\.geojson"):
        read_truth(broken)
    nocls = tmp_path / "nocls.geojson"
    gpd.GeoDataFrame({"kind": ["x"]}, geometry=[shapely.Point(126, 42)], crs="EPSG:4326").to_file(
        nocls
    )
    with pytest.raises(TruthError, match="class"):
        read_truth(nocls)
    odd = tmp_path / "odd.geojson"
    gpd.GeoDataFrame(
        {"class": ["bunker"], "status": ["new"]}, geometry=[shapely.Point(126, 42)], crs="EPSG:4326"
    ).to_file(odd)
    with pytest.raises(TruthError, match="bunker"):
        read_truth(odd)
    good = tmp_path / "good.geojson"
    gpd.GeoDataFrame(
        {"class": ["fence"], "status": ["new"]},
        geometry=[shapely.LineString([(126, 42), (126.01, 42)])],
        crs="EPSG:4326",
    ).to_file(good)
    assert len(read_truth(good)) == 1
    with pytest.raises(RunFolderError, match="detections"):
        evaluate_run(tmp_path / "empty_run", good)
