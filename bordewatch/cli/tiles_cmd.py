"""``bordewatch tiles``: plan the tiles along the border and preview imagery coverage."""

from __future__ import annotations

from pathlib import Path

import click

from bordewatch.cli.options import border_id_opt, border_opt, expand_paths, km_opt, overwrite_opt

__all__ = ["command", "plan_coverage"]


def _bands(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError as err:
        raise click.BadParameter(f"{text!r}: expected 1-based indexes like 3,2,1") from err


def plan_coverage(
    before: list[Path],
    after: list[Path],
    out: Path,
    *,
    border_path: Path | None = None,
    border_id: str | None = None,
    km_range: str | None = None,
    corridor_m: float = 1000.0,
    side: str = "both",
    tile_km: float = 1.0,
    gsd_m: float | None = None,
    bands: tuple[int, ...] | None = None,
    overwrite: bool = False,
) -> str:
    """Plan tiles, compute coverage, write the plan; return the one-line summary."""
    from bordewatch.atomic import atomic_path
    from bordewatch.border import load_border, parse_km_range
    from bordewatch.errors import OutputExistsError
    from bordewatch.imagery import open_epoch, target_gsd_m
    from bordewatch.tiling import check_overlap, plan_tiles, tile_coverage, tiles_frame

    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: exists; pass --overwrite to replace it")
    border = load_border(border_path, border_id=border_id)
    km = parse_km_range(km_range, border)
    pre = open_epoch(before, name="before", bands=bands)
    post = open_epoch(after, name="after", bands=bands)
    tiles = plan_tiles(
        border,
        km_range=km,
        corridor_m=corridor_m,
        side=side,  # type: ignore[arg-type]
        tile_km=tile_km,
        gsd_m=gsd_m or target_gsd_m(pre, post),
    )
    coverage = tile_coverage(tiles, pre, post)
    check_overlap(coverage, pre, post, border)
    frame = tiles_frame(tiles, coverage)
    with atomic_path(out) as tmp:
        frame.to_file(tmp, driver="GeoJSON", engine="pyogrio")
    covered = sum(c * (t.km_end - t.km_start) for t, c in zip(tiles, coverage))
    used = sum(c > 0 for c in coverage)
    return f"imagery covers {covered:.1f} of {km[1] - km[0]:.1f} km; {used} tiles"


@click.command("tiles")
@click.option("--before", multiple=True, required=True, help="Before-date raster(s); globs ok.")
@click.option("--after", multiple=True, required=True, help="After-date raster(s); globs ok.")
@border_opt
@border_id_opt
@km_opt
@click.option("--corridor-m", type=float, default=1000.0, show_default=True, help="Half-width.")
@click.option("--side", type=click.Choice(["left", "right", "both"]), default="both")
@click.option("--tile-km", type=float, default=1.0, show_default=True, help="Border km per tile.")
@click.option("--gsd-m", type=float, default=None, help="Tile pixel size (default: coarser epoch).")
@click.option("--bands", "bands_text", default=None, help="1-based R,G,B[,NIR] band indexes.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@overwrite_opt
def command(
    before: tuple[str, ...],
    after: tuple[str, ...],
    border_path: Path | None,
    border_id: str | None,
    km_range: str | None,
    corridor_m: float,
    side: str,
    tile_km: float,
    gsd_m: float | None,
    bands_text: str | None,
    out: Path,
    overwrite: bool,
) -> None:
    """Plan tiles along the border and write them with imagery coverage (a preview).

    Several files per epoch are mosaicked: where they overlap, the first valid pixel in the
    given order wins.

    \b
    $ bordewatch tiles --before pre/*.tif --after post/*.tif --km 610:660 --out tiles.geojson
    """
    summary = plan_coverage(
        expand_paths(before),
        expand_paths(after),
        out,
        border_path=border_path,
        border_id=border_id,
        km_range=km_range,
        corridor_m=corridor_m,
        side=side,
        tile_km=tile_km,
        gsd_m=gsd_m,
        bands=_bands(bands_text),
        overwrite=overwrite,
    )
    click.echo(summary)
