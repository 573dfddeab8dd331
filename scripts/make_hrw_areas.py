"""Write ``bordewatch/data/areas/hrw_2024.geojson``: the six areas Human Rights Watch studied.

HRW (2022, 2024) analysed 321 km of the border in six areas. We place each as a km range on the
default line, centred on the border km nearest to the area's town (approximate town coordinates
below), 53.5 km long (321 / 6), clipped to the line. These are approximations of HRW's areas for
roll-ups, not their exact extents. Run: ``python scripts/make_hrw_areas.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from bordewatch.border import default_border

TOWNS = {  # name: (lon, lat), approximate town centres
    "Sinuiju": (124.40, 40.10),
    "Chunggang": (126.88, 41.78),
    "Hyesan": (128.18, 41.40),
    "Taehongdan": (128.83, 42.12),
    "Hoeryong": (129.75, 42.44),
    "Sonbong": (130.40, 42.33),
}
HALF_KM = 321.0 / 6 / 2
OUT = Path(__file__).resolve().parents[1] / "bordewatch" / "data" / "areas" / "hrw_2024.geojson"


def main() -> None:
    border = default_border()
    features = []
    for name, (lon, lat) in TOWNS.items():
        km = float(border.km_of([lon], [lat])[0])
        start = max(0.0, km - HALF_KM)
        end = min(border.length_km, start + 2 * HALF_KM)
        start = max(0.0, end - 2 * HALF_KM)
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "area": name,
                    "km_start": round(start, 1),
                    "km_end": round(end, 1),
                    "town_lon": lon,
                    "town_lat": lat,
                    "note": "approximate: centred on the border km nearest the town; HRW 2024 areas",
                },
                "geometry": None,
            }
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"type": "FeatureCollection", "features": features}, indent=1) + "\n")
    for f in features:
        print(f["properties"]["area"], f["properties"]["km_start"], f["properties"]["km_end"])


if __name__ == "__main__":
    main()
