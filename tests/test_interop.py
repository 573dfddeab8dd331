"""Real clients read what bordewatch writes: QGIS (headless) and GDAL's command-line tools.

These tests skip with a reason where the client is absent (`make system-deps` installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from bordewatch.border import default_border
from bordewatch.outputs import write_geojson, write_gpkg

SYSTEM_PYTHON = Path("/usr/bin/python3")
BORDER = default_border()


def _has_qgis() -> bool:
    if not SYSTEM_PYTHON.exists():
        return False
    probe = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import qgis.core"], capture_output=True, check=False
    )
    return probe.returncode == 0


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """A small styled GeoPackage and GeoJSON of detections along km 810–813."""
    out = tmp_path_factory.mktemp("interop")
    crs = BORDER.utm_crs(810, 813)
    line = BORDER.line_in(crs, (810.0, 813.0))
    fence = line.offset_curve(-60.0)
    lane = line.offset_curve(-70.0)
    towers = [fence.interpolate(d) for d in np.arange(100.0, 2900.0, 300.0)]
    geoms = [fence, lane, *towers]
    classes = ["fence", "patrol_lane"] + ["watchtower"] * len(towers)
    statuses = (
        ["new", "existing"] + ["new", "existing"] * (len(towers) // 2) + ["new"] * (len(towers) % 2)
    )
    det = gpd.GeoDataFrame(
        {
            "id": [f"d{i}" for i in range(len(geoms))],
            "class": classes,
            "status": statuses,
            "score": 0.9,
            "km": 811.0,
            "offset_m": -60.0,
            "length_m": [g.length for g in geoms],
            "tile": "PRK-CHN-0810.000",
            "method": "classical",
        },
        geometry=geoms,
        crs=crs,
    ).to_crs("EPSG:4326")
    seg = BORDER.segments(1.0, (810.0, 813.0))
    seg["analysed"] = 1.0
    tiles = gpd.GeoDataFrame(
        {"id": ["t0"], "analysed_fraction": [1.0], "status": ["done"]},
        geometry=[shapely.buffer(line, 1000.0)],
        crs=crs,
    )
    gpkg, geojson = out / "bordewatch.gpkg", out / "detections.geojson"
    write_gpkg(
        gpkg,
        {"detections": det, "segments": seg, "tiles": tiles, "border": BORDER.to_geodataframe()},
        crs=crs,
    )
    write_geojson(det, geojson)
    return gpkg, geojson, len(det)


@pytest.mark.skipif(not _has_qgis(), reason="QGIS for Python (Debian python3-qgis) not installed")
def test_qgis_loads_styled_layers_and_renders(
    outputs: tuple[Path, Path, int], tmp_path: Path
) -> None:
    gpkg, geojson, n = outputs
    png = tmp_path / "qgis_map.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [
            str(SYSTEM_PYTHON),
            str(Path(__file__).with_name("qgis_check.py")),
            str(gpkg),
            str(geojson),
            str(png),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    layers = report["layers"]
    assert all(info["valid"] for info in layers.values()), layers
    assert layers["detections"]["count"] == n
    assert layers["detections"]["crs"] == "EPSG:32652"
    assert (
        layers["detections"]["style_loaded"] and layers["detections"]["renderer"] == "RuleRenderer"
    )
    assert layers["border"]["count"] == 1
    assert report["geojson"] == {"valid": True, "count": n, "crs": "EPSG:4326"}
    assert report["rendered"] and png.stat().st_size > 2000
    if "BORDEWATCH_ARTIFACTS" in os.environ:  # keep the picture for a person to look at
        shutil.copy(png, Path(os.environ["BORDEWATCH_ARTIFACTS"]) / "qgis_map.png")


@pytest.mark.skipif(
    shutil.which("ogrinfo") is None, reason="GDAL's ogrinfo (Debian gdal-bin) not installed"
)
def test_ogrinfo_reads_every_layer_without_warnings(outputs: tuple[Path, Path, int]) -> None:
    gpkg, geojson, n = outputs
    for target in (str(gpkg), str(geojson)):
        proc = subprocess.run(
            ["ogrinfo", "-ro", "-al", "-so", target], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr
        assert "Warning" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr
    proc = subprocess.run(
        ["ogrinfo", "-ro", "-so", str(gpkg)], capture_output=True, text=True, check=False
    )
    for layer in ("detections", "segments", "tiles", "border"):
        assert layer in proc.stdout
    proc = subprocess.run(
        ["ogrinfo", "-ro", "-al", "-so", str(geojson)], capture_output=True, text=True, check=False
    )
    assert f"Feature Count: {n}" in proc.stdout
