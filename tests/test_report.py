"""report.build_report on a small run folder: files, agreement of numbers, escaping, CLI, browser."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bordewatch.border import GEOD
from bordewatch.cli.main import cli
from bordewatch.errors import RunFolderError
from bordewatch.report import build_report, read_run
from bordewatch.rollup import SEGMENT_COLUMNS, rollup_per_km

_spec = importlib.util.spec_from_file_location(
    "_bw_rollup_data", Path(__file__).with_name("test_rollup.py")
)
assert _spec is not None and _spec.loader is not None
_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_data)
make_run_folder = _data.make_run_folder

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    run = make_run_folder(tmp_path_factory.mktemp("report") / "run")
    meta = json.loads((run / "run.json").read_text())
    meta["command"] = "bordewatch detect <script>alert(1)</script> --km 800:805"
    (run / "run.json").write_text(json.dumps(meta))
    return run, build_report(run)


class _Tables(HTMLParser):
    """Collect the text of every table cell, per table id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self._table = dict(attrs).get("id") or f"t{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(html: str) -> _Tables:
    p = _Tables()
    p.feed(html)
    return p


def test_files_written(built) -> None:
    _, files = built
    for path in (files.html, files.md, files.coverage_csv, files.segments_geojson):
        assert path.exists() and path.stat().st_size > 0
    names = {p.name for p in files.figures}
    assert {"strip_chart.png", "overview_map.png"} <= names
    assert any(n.startswith("chip_watchtower") for n in names)
    assert any(n.startswith("chip_fence") for n in names)
    for p in files.figures:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_is_self_contained_and_escaped(built) -> None:
    _, files = built
    html = files.html.read_text()
    assert not re.search(r"https?://", html), "external URL in report.html"
    assert "<script" not in html.lower() and "&lt;script&gt;" in html
    parsed = _parse(html)
    srcs = [a.get("src") for t, a in parsed.tags if t == "img"]
    assert len(srcs) == len(files.figures)
    assert all(s and s.startswith("data:image/png;base64,") for s in srcs)
    assert not any(t == "link" for t, _ in parsed.tags)
    for line in files.headline.lines():
        assert line.replace(" -> ", " → ") in html
        assert line in files.md.read_text()


def test_numbers_agree_csv_html_md_geojson(built) -> None:
    _, files = built
    csv = pd.read_csv(files.coverage_csv)
    assert list(csv.columns) == list(SEGMENT_COLUMNS)
    assert csv["km_start"].tolist() == [800.0, 801.0, 802.0, 803.0, 804.0]
    rows = _parse(files.html.read_text()).tables["km-table"][1:]
    md = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in files.md.read_text().splitlines()
        if re.match(r"\| 80\d\.000 \|", line)
    ]
    assert len(rows) == len(md) == len(csv)
    for i, rec in enumerate(csv.to_dict("records")):
        for j, col in enumerate(SEGMENT_COLUMNS):
            scale = 100.0 if col in ("analysed", "fenced_before", "fenced_after") else 1.0
            assert float(rows[i][j]) == pytest.approx(rec[col] * scale, abs=1e-9), (i, col)
            assert md[i][j] == rows[i][j]
    seg = gpd.read_file(files.segments_geojson)
    for col in SEGMENT_COLUMNS:
        np.testing.assert_allclose(seg[col].to_numpy(float), csv[col].to_numpy(float))


def test_numbers_recomputed_from_detections(built) -> None:
    run, files = built
    csv = pd.read_csv(files.coverage_csv)
    det = gpd.read_file(run / "detections.geojson")
    towers = det[det["class"] == "watchtower"]
    assert csv["new_watchtowers"].sum() == (towers["status"] == "new").sum()
    assert (
        csv["watchtowers_after"].sum()
        == towers["status"].isin(["new", "existing", "upgraded"]).sum()
    )
    new_fence = det[(det["class"] == "fence") & (det["status"] == "new")]
    total = sum(GEOD.geometry_length(g) for g in new_fence.geometry)
    assert csv["new_fence_m"].sum() == pytest.approx(total, rel=1e-3)
    tiles = gpd.read_file(run / "bordewatch.gpkg", layer="tiles")
    again = rollup_per_km(det, tiles, _data.border(), (800.0, 805.0))
    np.testing.assert_allclose(again["fenced_after"], csv["fenced_after"])
    # The headline is the sum of the table.
    assert files.headline.new_watchtowers == csv["new_watchtowers"].sum()
    width = csv["km_end"] - csv["km_start"]
    assert files.headline.analysed_km == pytest.approx((csv["analysed"] * width).sum())


def test_report_has_sections_and_limitations(built) -> None:
    _, files = built
    html = files.html.read_text()
    for section in ("headline", "where", "areas", "per-km", "evidence", "methods", "limitations"):
        assert f'id="{section}"' in html
    areas = _parse(html).tables["area-table"]
    assert [r[0] for r in areas[1:]] == ["Hoeryong", "whole run"]
    assert "PRK-CHN-0803.000" in html and "all nodata in after" in html  # failed tile listed
    assert "km 802–804" in html  # unanalysed stretch (km 802 half, km 803 none)
    inputs = _parse(html).tables["inputs-table"]
    assert len(inputs) == 3 and all(len(r[4]) == 64 for r in inputs[1:])  # sha256 shown


def test_deterministic(built, tmp_path: Path) -> None:
    run, files = built
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    again = build_report(copy)
    for a, b in [
        (files.html, again.html),
        (files.md, again.md),
        (files.coverage_csv, again.coverage_csv),
    ]:
        assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest(), (
            a.name
        )
    assert [p.read_bytes() for p in files.figures] == [p.read_bytes() for p in again.figures]


def test_edit_detections_and_rebuild_via_cli(built, tmp_path: Path) -> None:
    run, _ = built
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    gj = json.loads((copy / "detections.geojson").read_text())
    before = sum(
        f["properties"]["class"] == "watchtower" and f["properties"]["status"] == "new"
        for f in gj["features"]
    )
    gj["features"] = [
        f
        for f in gj["features"]
        if not (f["properties"]["class"] == "watchtower" and f["properties"]["status"] == "new")
    ][:]
    gj["features"] += []
    (copy / "detections.geojson").write_text(json.dumps(gj))
    result = CliRunner().invoke(cli, ["report", "--run", str(copy)])
    assert result.exit_code == 0, result.output
    assert "Watchtowers and guard posts: 3 before -> 2 after (0 new" in result.output
    assert f"report: {copy / 'report.html'}" in result.output
    csv = pd.read_csv(copy / "coverage.csv")
    assert before == 3 and csv["new_watchtowers"].sum() == 0
    assert not (copy / "figures" / "chip_watchtower_9.png").exists()  # stale chip removed
    assert len(list((copy / "figures").glob("chip_watchtower_*.png"))) == 3


def test_edits_made_in_the_gpkg_are_reported(built, tmp_path: Path, caplog) -> None:
    """A user who deletes detections in QGIS edits the GPKG layer: the report follows that copy."""
    import os

    import geopandas as gpd

    run, _ = built
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    gpkg = copy / "bordewatch.gpkg"
    layer = gpd.read_file(gpkg, layer="detections")
    new_towers = (layer["class"] == "watchtower") & (layer["status"] == "new")
    assert new_towers.sum() == 3
    layer[~new_towers].to_file(gpkg, layer="detections", driver="GPKG")
    stamp = (copy / "detections.geojson").stat().st_mtime
    os.utime(gpkg, (stamp + 10, stamp + 10))  # QGIS saved it after the run wrote the GeoJSON
    with caplog.at_level("WARNING", logger="bordewatch.report"):
        result = CliRunner().invoke(cli, ["report", "--run", str(copy)])
    assert result.exit_code == 0, result.output
    assert "Watchtowers and guard posts: 3 before -> 2 after (0 new" in result.output
    assert "using bordewatch.gpkg, the one edited last" in caplog.text
    assert "bordewatch.gpkg (layer &#39;detections&#39;)" in (copy / "report.html").read_text()
    # the GPKG's per-km layer is rewritten to match coverage.csv; the user's edit is kept
    segs = gpd.read_file(gpkg, layer="segments")
    csv = pd.read_csv(copy / "coverage.csv")
    assert segs["new_watchtowers"].sum() == csv["new_watchtowers"].sum() == 0
    assert len(gpd.read_file(gpkg, layer="detections")) == (~new_towers).sum()
    assert {"tiles", "border"} <= set(gpd.list_layers(gpkg)["name"])
    # the GeoJSON edited last wins instead, and identical copies give no warning
    os.utime(gpkg, (stamp - 10, stamp - 10))
    assert read_run(copy).detections_source == "detections.geojson"
    (copy / "detections.geojson").unlink()
    layer.to_crs("EPSG:4326").to_file(copy / "detections.geojson", driver="GeoJSON")
    layer.to_file(gpkg, layer="detections", driver="GPKG")
    caplog.clear()
    assert read_run(copy).detections_source == "detections.geojson" and not caplog.text


def test_bad_run_folders(tmp_path: Path, built) -> None:
    with pytest.raises(RunFolderError, match=r"run\.json"):
        build_report(tmp_path)
    run, _ = built
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("*.tif"))
    gj = json.loads((copy / "detections.geojson").read_text())
    gj["features"][0]["properties"]["class"] = "fense"
    (copy / "detections.geojson").write_text(json.dumps(gj))
    with pytest.raises(
        RunFolderError, match=r"detections.geojson: unknown class value\(s\) \['fense'\]"
    ):
        build_report(copy)
    result = CliRunner().invoke(cli, ["report", "--run", str(copy)])
    assert result.exit_code == 1
    assert "unknown class" in result.output and "Traceback" not in result.output


def test_no_imagery_still_reports(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run", imagery=False)
    files = build_report(run)
    html = files.html.read_text()
    assert "No evidence chips" in html
    assert [p.name for p in files.figures] == ["strip_chart.png", "overview_map.png"]


def test_renders_in_headless_chromium(built, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("headless browser check needs /usr/bin/chromium (Debian package 'chromium')")
    _, files = built
    shot = tmp_path / "report.png"
    log = tmp_path / "net.log"
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", f"--log-net-log={log}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--screenshot={shot}", "--window-size=1280,2000", files.html.resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=120, capture_output=True)
    assert shot.exists() and shot.stat().st_size > 10_000
    shutil.copy(shot, files.html.parent / "figures" / "screenshot_chromium.png")
    # The net log also holds the browser's own background calls (update, time, accounts at
    # Google hosts) despite the flags; any other http(s) request would come from the page.
    urls = set(re.findall(r'"url":"(https?://[^"]+)"', log.read_text(errors="replace")))
    own = re.compile(
        r"^https?://([a-z0-9-]+\.)*(google\.com|googleapis\.com|gstatic\.com|gvt1\.com)/"
    )
    page = sorted(u for u in urls if not own.match(u))
    assert not page, f"report.html made external requests: {page}"
    log_text = log.read_text(errors="replace")
    assert files.html.resolve().as_uri() in log_text or "file://" in log_text
