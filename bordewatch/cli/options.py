"""Click options and parameter types shared by several subcommands."""

from __future__ import annotations

import glob
from pathlib import Path

import click

__all__ = ["border_id_opt", "border_opt", "expand_paths", "km_opt", "overwrite_opt"]

border_opt = click.option(
    "--border",
    "border_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Border line file (any OGR format, any CRS). Default: the shipped North Korea–China line.",
)
border_id_opt = click.option(
    "--border-id",
    default=None,
    help="Which line to use when the border file holds several (border_id/id/name or index).",
)
km_opt = click.option(
    "--km",
    "km_range",
    default=None,
    metavar="START:END",
    help="Chainage range in km from the line's start, e.g. 610:660 (default: the whole line).",
)
overwrite_opt = click.option(
    "--overwrite", is_flag=True, help="Replace existing outputs in the output folder."
)


def expand_paths(patterns: tuple[str, ...]) -> list[Path]:
    """Expand shell-style globs (for users whose shell did not), keeping the given order."""
    paths: list[Path] = []
    for pattern in patterns:
        hits = sorted(glob.glob(pattern)) if any(ch in pattern for ch in "*?[") else [pattern]
        paths.extend(Path(h) for h in (hits or [pattern]))
    return paths
