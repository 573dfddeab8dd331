"""``bordewatch detect``: not built yet."""

from __future__ import annotations

import click

__all__ = ["command"]


@click.command("detect", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(args: tuple[str, ...]) -> None:
    """(Not built yet.)"""
    raise click.UsageError("bordewatch detect is not built yet")
