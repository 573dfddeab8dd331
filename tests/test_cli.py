"""The command-line skin: help, version, one-line errors and exit codes."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from bordewatch import __version__
from bordewatch.cli.main import cli


def test_help_lists_the_design_subcommands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("detect", "synth", "report", "evaluate", "tiles", "border"):
        assert name in result.output


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_border_info_prints_the_default_line() -> None:
    result = CliRunner().invoke(cli, ["border", "info"])
    assert result.exit_code == 0, result.output
    assert "PRK-CHN" in result.output and "1004.9 km" in result.output


def test_library_error_is_one_line_exit_1() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bordewatch", "border", "info", "--km", "20:10"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "reversed" in lines[0]
    assert "Traceback" not in proc.stderr


def test_debug_shows_the_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bordewatch", "--debug", "border", "info", "--km", "20:10"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_bad_usage_exits_2() -> None:
    result = CliRunner().invoke(cli, ["border", "info", "--no-such-option"])
    assert result.exit_code == 2
