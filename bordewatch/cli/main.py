"""``bordewatch`` command group: logging, error handling, subcommand registration.

Every :class:`~bordewatch.errors.BordewatchError` becomes one line on stderr and exit code 1;
usage errors exit 2 (click's convention); ``--debug`` shows the full traceback instead.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from bordewatch import __version__
from bordewatch.errors import BordewatchError

__all__ = ["cli", "main"]

log = logging.getLogger("bordewatch")


class _Group(click.Group):
    """A group that turns library errors into one clear line (unless ``--debug``)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BordewatchError as err:
            if ctx.meta.get("bordewatch.debug"):
                raise
            # one line, whatever the message embeds (e.g. a library's multi-line reason)
            raise click.ClickException(" ".join(str(err).split())) from None
        except KeyboardInterrupt:
            click.echo("interrupted; finished tiles are kept (re-run with --resume)", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bordewatch")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug logs).")
@click.option("-q", "--quiet", count=True, help="Less output: no progress bar, warnings only.")
@click.option("--debug", is_flag=True, help="Show full Python tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int, debug: bool) -> None:
    """Find new border infrastructure (fences, patrol lanes, watchtowers) in satellite imagery.

    \b
    $ bordewatch synth --preset demo --out data/demo
    $ bordewatch detect --before data/demo/before.tif --after data/demo/after.tif --out runs/demo
    $ bordewatch report --run runs/demo
    """
    level = logging.WARNING + 10 * (quiet - verbose)
    logging.basicConfig(
        level=max(logging.DEBUG, min(level, logging.ERROR)),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ctx.ensure_object(dict)
    ctx.obj["quiet"] = quiet
    ctx.obj["verbose"] = verbose
    ctx.meta["bordewatch.debug"] = debug


def _register() -> None:
    from bordewatch.cli import (
        border_cmd,
        detect_cmd,
        evaluate_cmd,
        report_cmd,
        synth_cmd,
        tiles_cmd,
        train_cmd,
    )

    for module in (
        detect_cmd,
        synth_cmd,
        report_cmd,
        evaluate_cmd,
        tiles_cmd,
        border_cmd,
        train_cmd,
    ):
        cli.add_command(module.command)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="bordewatch")
