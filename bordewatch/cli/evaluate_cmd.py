"""``bordewatch evaluate``: score a finished run against a ground-truth file."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["command"]


@click.command("evaluate")
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A finished run folder (holds detections.geojson and bordewatch.gpkg).",
)
@click.option(
    "--truth",
    "truth_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Ground truth in the detections.geojson schema (class, status; optional observable).",
)
@click.option(
    "--status",
    type=click.Choice(["new", "all"]),
    default="new",
    show_default=True,
    help="Score only new objects, or the full inventory of every status.",
)
def command(run_dir: Path, truth_path: Path, status: str) -> None:
    """Precision, recall and F1 per class, and per-km errors, against ground truth.

    Writes RUN/evaluation.json.

    \b
    $ bordewatch evaluate --run runs/demo --truth data/demo/truth.geojson
    $ bordewatch evaluate --run runs/demo --truth data/demo/truth.geojson --status all
    """
    from bordewatch.evaluate import evaluate_run, format_table

    result = evaluate_run(run_dir, truth_path, status=status)
    click.echo(format_table(result))
    click.echo(f"evaluation: {run_dir / 'evaluation.json'}")
