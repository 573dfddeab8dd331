"""``bordewatch detect``: find new border infrastructure between two epochs of imagery."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from bordewatch.cli.options import (
    border_id_opt,
    border_opt,
    expand_paths,
    km_opt,
    overwrite_opt,
)

__all__ = ["command"]


class _ManyValues(click.Option):
    """A repeatable option that also takes several values after one flag (``--before a.tif b.tif``).

    Shells expand ``--before tiles/*.tif`` into many words; they are all taken, up to the next
    word that starts with ``-``.
    """

    def add_to_parser(self, parser: object, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)  # type: ignore[arg-type]
        for name in self.opts:
            opt = parser._long_opt.get(name) or parser._short_opt.get(name)  # type: ignore[attr-defined]
            if opt is None:
                continue
            take_one = opt.process

            def process(value: str, state: object, take_one: object = take_one) -> None:
                take_one(value, state)  # type: ignore[operator]
                rest = state.rargs  # type: ignore[attr-defined]
                while rest and not rest[0].startswith("-"):
                    take_one(rest.pop(0), state)  # type: ignore[operator]

            opt.process = process


def _bands(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if not value:
        return None
    try:
        bands = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected 1-based band numbers, e.g. 3,2,1") from None
    if any(b < 1 for b in bands):
        raise click.BadParameter(f"{value!r}: band numbers start at 1")
    return bands


@click.command("detect")
@click.option(
    "--before",
    "before",
    cls=_ManyValues,
    multiple=True,
    required=True,
    metavar="FILE...",
    help="Rasters of the earlier date (several files or a glob). Several files are "
    "mosaicked in the given order: the first valid pixel wins.",
)
@click.option(
    "--after",
    "after",
    cls=_ManyValues,
    multiple=True,
    required=True,
    metavar="FILE...",
    help="Rasters of the later date (same rules as --before).",
)
@border_opt
@border_id_opt
@km_opt
@click.option(
    "--corridor-m",
    type=click.FloatRange(min=1.0, max=50_000.0),
    default=1000.0,
    show_default=True,
    help="Half-width of the corridor either side of the border, metres.",
)
@click.option(
    "--side",
    type=click.Choice(["left", "right", "both"]),
    default="both",
    show_default=True,
    help="Which side(s) of the line to analyse.",
)
@click.option(
    "--tile-km",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Border length per tile, km.",
)
@click.option(
    "--gsd-m",
    type=click.FloatRange(min=0.05),
    default=None,
    help="Pixel size of the tile grid, metres (default: the coarser epoch's native GSD).",
)
@click.option(
    "--overlap-m",
    type=click.FloatRange(min=0.0),
    default=50.0,
    show_default=True,
    help="Margin read around each tile so objects on edges are seen whole, metres.",
)
@click.option(
    "--method",
    type=click.Choice(["classical", "model", "hybrid"]),
    default="classical",
    show_default=True,
    help="Detection method.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Local worker processes (default: one per CPU core).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Use an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (see below).",
)
@click.option(
    "--clouds",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Cloud mask: polygons (any OGR file) or a raster; masked pixels are not analysed.",
)
@click.option(
    "--no-auto-clouds",
    is_flag=True,
    help="Do not flag thick cloud (bright, low-texture) and its whitish margins automatically.",
)
@click.option(
    "--sun-azimuth",
    type=click.FloatRange(0.0, 360.0),
    default=None,
    metavar="DEG",
    help="Sun azimuth, degrees clockwise from north (default: estimated per epoch).",
)
@click.option(
    "--bands",
    callback=_bands,
    default=None,
    metavar="B,B,B",
    help="Band numbers to use as red,green,blue[,nir] when files do not say (e.g. 3,2,1).",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Weight file for --method model/hybrid (default: the shipped models/bordewatch_siam.pt).",
)
@click.option(
    "--resume", is_flag=True, help="Continue an interrupted run in --out: finished tiles are kept."
)
@overwrite_opt
@click.option(
    "--strict",
    is_flag=True,
    help="Stop at the first tile that fails (default: record it and go on).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder for detections, GeoPackage, change map, report and run.json.",
)
@click.pass_context
def command(ctx: click.Context, **opts: object) -> None:
    """Detect fences, patrol lanes and watchtowers, and say which are new.

    Imagery of any CRS, resolution, band count and bit depth is read onto tiles along the
    border corridor (one per km). Several files per date are mosaicked on the fly in the given
    order: where they overlap, the first file with a valid pixel wins. Tiles run as Dask tasks
    on a local cluster of one single-threaded process per core (runs with --workers 1 or at
    most two tiles to compute run in this process, skipping the cluster's start-up); a run
    that is interrupted continues with --resume. Progress goes to stderr (-q silences it).

    \b
    $ bordewatch detect --before 'pre/*.tif' --after 'post/*.tif' --km 610:660 --out runs/hoeryong

    \b
    On an existing Dask cluster (every worker must see the input files and --out at the same
    paths, e.g. on a shared disk):
    $ dask scheduler                                  # prints tcp://HOST:8786
    $ dask worker tcp://HOST:8786 --nworkers 8 --nthreads 1
    $ bordewatch detect --before ... --after ... --scheduler tcp://HOST:8786 --out runs/x
    """
    from bordewatch.pipeline import DetectRequest, run_detect

    if opts["workers"] is not None and opts["scheduler"] is not None:
        raise click.UsageError("give --workers or --scheduler, not both")
    quiet = bool((ctx.obj or {}).get("quiet", 0))
    request = DetectRequest(
        before=tuple(expand_paths(opts["before"])),  # type: ignore[arg-type]
        after=tuple(expand_paths(opts["after"])),  # type: ignore[arg-type]
        out_dir=opts["out_dir"],  # type: ignore[arg-type]
        border=opts["border_path"],  # type: ignore[arg-type]
        border_id=opts["border_id"],  # type: ignore[arg-type]
        km_range=opts["km_range"],  # type: ignore[arg-type]
        corridor_m=opts["corridor_m"],  # type: ignore[arg-type]
        side=opts["side"],  # type: ignore[arg-type]
        tile_km=opts["tile_km"],  # type: ignore[arg-type]
        gsd_m=opts["gsd_m"],  # type: ignore[arg-type]
        overlap_m=opts["overlap_m"],  # type: ignore[arg-type]
        method=opts["method"],  # type: ignore[arg-type]
        workers=opts["workers"],  # type: ignore[arg-type]
        scheduler=opts["scheduler"],  # type: ignore[arg-type]
        resume=bool(opts["resume"]),
        overwrite=bool(opts["overwrite"]),
        strict=bool(opts["strict"]),
        clouds=opts["clouds"],  # type: ignore[arg-type]
        auto_clouds=not opts["no_auto_clouds"],
        sun_azimuth=opts["sun_azimuth"],  # type: ignore[arg-type]
        bands=opts["bands"],  # type: ignore[arg-type]
        model_path=opts["model_path"],  # type: ignore[arg-type]
        progress=not quiet,
        command=shlex.join(["bordewatch", *sys.argv[1:]]),
    )
    summary = run_detect(request)
    for line in summary.headline:
        click.echo(line)
    if summary.failed:
        click.echo(
            f"{len(summary.failed)} tile(s) failed (listed in run.json): "
            + ", ".join(t for t, _ in summary.failed[:5]),
            err=True,
        )
    click.echo(
        f"{summary.tiles_done} of {summary.tiles_total} tiles analysed, "
        f"{summary.detections} detections in {summary.seconds:.0f} s"
    )
    if summary.report_path is not None:
        click.echo(f"report: {summary.report_path}")
