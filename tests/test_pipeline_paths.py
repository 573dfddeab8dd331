"""Paths handed to Dask tasks: workers of a user's cluster run in other directories."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from bordewatch import pipeline
from bordewatch.imagery import open_epoch


def _tiny_geotiff(path: Path) -> None:
    data = np.random.default_rng(0).integers(1, 255, (3, 32, 32), dtype=np.uint8)
    profile = {
        "driver": "GTiff",
        "width": 32,
        "height": 32,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32652",
        "transform": from_origin(552000.0, 4700000.0, 1.0, 1.0),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def test_tasks_get_absolute_paths_for_workers_elsewhere(tmp_path, monkeypatch) -> None:
    _tiny_geotiff(tmp_path / "before.tif")
    monkeypatch.chdir(tmp_path)
    epoch = open_epoch(["before.tif"], name="before")
    assert epoch.sources[0].path == "before.tif"
    moved = pipeline._absolute_paths(epoch)
    assert moved.sources[0].path == str(tmp_path / "before.tif")
    assert moved.sources[0].footprint.equals(epoch.sources[0].footprint)
    assert moved.name == "before"
    # URLs and GDAL virtual paths are not files here: they stay as given
    remote = replace(epoch.sources[0], path="/vsicurl/https://example.org/x.tif")
    kept = pipeline._absolute_paths(replace(epoch, sources=(remote,)))
    assert kept.sources[0].path == "/vsicurl/https://example.org/x.tif"
