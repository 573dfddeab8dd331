"""Load bordewatch outputs in headless QGIS and render them (run with Debian's /usr/bin/python3).

Usage: python3 qgis_check.py GPKG GEOJSON PNG. Prints one JSON line describing every layer.
Deletes layers, map settings and the render job before exitQgis(), or QGIS segfaults on exit.
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (
    QgsApplication,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor


def main(gpkg: str, geojson: str, png: str) -> None:
    app = QgsApplication([], False)
    app.initQgis()
    report = {"layers": {}}
    layers = []
    for name in ("detections", "segments", "tiles", "border"):
        layer = QgsVectorLayer(f"{gpkg}|layername={name}", name, "ogr")
        _message, loaded = layer.loadDefaultStyle()
        report["layers"][name] = {
            "valid": layer.isValid(),
            "count": layer.featureCount(),
            "crs": layer.crs().authid(),
            "renderer": layer.renderer().type() if layer.renderer() else None,
            "style_loaded": bool(loaded),
        }
        layers.append(layer)
    gj = QgsVectorLayer(geojson, "detections_geojson", "ogr")
    report["geojson"] = {
        "valid": gj.isValid(),
        "count": gj.featureCount(),
        "crs": gj.crs().authid(),
    }
    settings = QgsMapSettings()
    settings.setLayers([layers[0], layers[3]])  # detections over the border line
    settings.setDestinationCrs(layers[0].crs())
    extent = QgsRectangle(layers[0].extent())
    extent.scale(1.3)
    settings.setExtent(extent)
    settings.setOutputSize(QSize(800, 500))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    report["rendered"] = bool(image.save(png, "png"))
    print(json.dumps(report))
    del job, settings, image, gj
    for layer in layers:
        del layer
    layers.clear()
    app.exitQgis()


if __name__ == "__main__":
    main(*sys.argv[1:4])
