"""``bordewatch evaluate``: not built yet."""

from __future__ import annotations

import click

__all__ = ["command"]


@click.command("evaluate", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(args: tuple[str, ...]) -> None:
    """(Not built yet.)"""
    raise click.UsageError("bordewatch evaluate is not built yet")
