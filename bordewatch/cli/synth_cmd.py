"""``bordewatch synth``: write a synthetic before/after scene with ground truth."""

from __future__ import annotations

from pathlib import Path

import click

from bordewatch.cli.options import border_id_opt, border_opt, km_opt, overwrite_opt

__all__ = ["command"]


@click.command("synth")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder.",
)
@border_opt
@border_id_opt
@km_opt
@click.option(
    "--gsd-m",
    type=float,
    default=None,
    help="Pixel size in metres, 0.3–10 (default: the preset's, 1 m).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same files)."
)
@click.option(
    "--preset",
    type=click.Choice(["demo", "hoeryong", "hard", "nothing_new"]),
    default="demo",
    show_default=True,
    help="Scene family: demo (10 km, 1 m), hoeryong (HRW densities), hard (0.5 m, strong nuisance), nothing_new.",
)
@click.option(
    "--bands",
    type=click.Choice(["rgb", "rgbn"]),
    default="rgbn",
    show_default=True,
    help="Band set.",
)
@click.option(
    "--dtype",
    type=click.Choice(["uint8", "uint16"]),
    default="uint8",
    show_default=True,
    help="uint16 holds 12-bit data.",
)
@click.option(
    "--after-crs",
    default=None,
    metavar="CRS",
    help="Write after.tif in another CRS, e.g. EPSG:4326.",
)
@click.option(
    "--corridor-m",
    type=float,
    default=1000.0,
    show_default=True,
    help="Half width of the imaged corridor.",
)
@overwrite_opt
def command(
    out_dir: Path,
    border_path: Path | None,
    border_id: str | None,
    km_range: str | None,
    gsd_m: float | None,
    seed: int,
    preset: str,
    bands: str,
    dtype: str,
    after_crs: str | None,
    corridor_m: float,
    overwrite: bool,
) -> None:
    """Write a realistic synthetic scene pair (before.tif, after.tif) with truth.geojson.

    \b
    $ bordewatch synth --preset demo --out data/demo
    $ bordewatch synth --preset hard --km 610:616 --seed 3 --after-crs EPSG:4326 --out data/hard
    """
    from bordewatch.border import load_border, parse_km_range
    from bordewatch.synth.geo import make_scene

    border = load_border(border_path, border_id=border_id)
    km = parse_km_range(km_range, border) if km_range else None
    files = make_scene(
        out_dir,
        border=border,
        km_range=km,
        gsd_m=gsd_m,
        rng=seed,
        preset=preset,
        bands=bands,
        dtype=dtype,
        after_crs=after_crs,
        corridor_m=corridor_m,
        overwrite=overwrite,
    )
    click.echo(
        f"wrote {files.before.parent}: before.tif after.tif truth.geojson clouds.geojson scene.json quicklook.png"
    )
