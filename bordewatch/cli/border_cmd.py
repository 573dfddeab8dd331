"""``bordewatch border``: inspect a border line (name, length, km range, UTM zones)."""

from __future__ import annotations

from pathlib import Path

import click

from bordewatch.border import load_border, parse_km_range
from bordewatch.cli.options import border_id_opt, border_opt, km_opt

__all__ = ["command"]


@click.group("border")
def command() -> None:
    """Inspect border lines."""


@command.command("info")
@border_opt
@border_id_opt
@km_opt
def info(border_path: Path | None, border_id: str | None, km_range: str | None) -> None:
    """Print a border line's name, geodesic length, km range and metric CRS.

    \b
    $ bordewatch border info
    $ bordewatch border info --border my_line.gpkg --km 10:60
    """
    border = load_border(border_path, border_id=border_id)
    start, end = parse_km_range(km_range, border)
    lon0, lat0 = border.point_at([start])
    lon1, lat1 = border.point_at([end])
    click.echo(f"border:   {border.name}")
    click.echo(f"source:   {border.source}")
    click.echo(
        f"length:   {border.length_km:.1f} km (geodesic, WGS84), {len(border.coords)} vertices"
    )
    click.echo(f"km range: {start:.1f} to {end:.1f} km")
    click.echo(f"from:     {lon0[0]:.5f}, {lat0[0]:.5f} (lon, lat) at km {start:.1f}")
    click.echo(f"to:       {lon1[0]:.5f}, {lat1[0]:.5f} (lon, lat) at km {end:.1f}")
    click.echo(f"sides:    left of the line's direction = {border.left}, right = {border.right}")
    click.echo(
        f"UTM:      {border.utm_crs(start, start)} at the start, {border.utm_crs(end, end)} at the end"
    )
