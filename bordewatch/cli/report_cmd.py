"""``bordewatch report``: rebuild the statistics and the report of a finished run."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["command"]


@click.command("report")
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A run folder written by `bordewatch detect`.",
)
def command(run_dir: Path) -> None:
    """Recompute coverage.csv, segments.geojson, report.html/.md and figures from a run's files.

    No detection is re-run: edit detections.geojson (e.g. delete false positives in QGIS),
    then rebuild.

    \b
    $ bordewatch report --run runs/demo
    """
    from bordewatch.report import build_report

    files = build_report(run_dir)
    for line in files.headline.lines():
        click.echo(line)
    click.echo(f"report: {files.html}")
