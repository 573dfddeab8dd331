"""Progress of a detect run on stderr: tiles done / total, km of border done, Mpx/s, ETA.

On a terminal it is a one-line bar redrawn in place; otherwise (a log file, CI) it writes a
plain line at most every ``interval_s`` seconds and at the end. ``enabled=False`` (``-q``)
silences it. Rates count only tiles computed in this run (not tiles reloaded by ``--resume``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

__all__ = ["Progress", "format_eta"]


def format_eta(seconds: float | None) -> str:
    """Format a duration as ``H:MM:SS`` (``--:--`` when unknown).

    Examples
    --------
    >>> format_eta(3725)
    '1:02:05'
    >>> format_eta(None)
    '--:--'
    """
    if seconds is None or seconds != seconds or seconds < 0:
        return "--:--"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclass(slots=True)
class Progress:
    """Mutable progress state of one run (lives in the client process only).

    Parameters
    ----------
    total_tiles : int
        Tiles to account for (done + to do).
    total_km : float
        Border km those tiles cover.
    enabled : bool
        False silences all output.
    stream : text stream, optional
        Default ``sys.stderr``.
    interval_s : float
        Minimum seconds between log lines when the stream is not a terminal.
    """

    total_tiles: int
    total_km: float
    enabled: bool = True
    stream: TextIO | None = None
    interval_s: float = 10.0
    tiles_done: int = 0
    tiles_failed: int = 0
    km_done: float = 0.0
    _px: float = 0.0
    _fresh_tiles: int = 0
    _start: float = field(default_factory=time.perf_counter)
    _last: float = float("-inf")
    _printed_at: int = -1

    def __post_init__(self) -> None:
        if self.stream is None:
            self.stream = sys.stderr

    @property
    def is_tty(self) -> bool:
        """Whether the stream is an interactive terminal."""
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def note(self, text: str) -> None:
        """Write one line (e.g. the dashboard address) unless silenced."""
        if self.enabled and self.stream is not None:
            self._clear_line()
            self.stream.write(text + "\n")
            self.stream.flush()

    def skip(self, km: float) -> None:
        """Account for a tile already done (resumed) or skipped: no rate contribution."""
        self.tiles_done += 1
        self.km_done += km
        self._maybe_draw()

    def advance(self, km: float, pixels: float, *, failed: bool = False) -> None:
        """Account for one tile computed in this run (``pixels``: grid pixels of one epoch)."""
        self.tiles_done += 1
        self.tiles_failed += int(failed)
        self.km_done += km
        self._px += pixels
        self._fresh_tiles += 1
        self._maybe_draw()

    def line(self) -> str:
        """The current status text."""
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        rate = self._px / elapsed / 1e6
        left = self.total_tiles - self.tiles_done
        eta = elapsed / self._fresh_tiles * left if self._fresh_tiles else None
        failed = f", {self.tiles_failed} failed" if self.tiles_failed else ""
        return (
            f"tiles {self.tiles_done}/{self.total_tiles}{failed} | "
            f"{self.km_done:.1f}/{self.total_km:.1f} km | {rate:.2f} Mpx/s | ETA {format_eta(eta)}"
        )

    def close(self) -> None:
        """Draw the final state and end the line."""
        if not self.enabled or self.stream is None:
            return
        if self.is_tty:
            self.stream.write("\r" + self._bar() + "\n")
        elif self._printed_at != self.tiles_done:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def _bar(self, width: int = 24) -> str:
        frac = self.tiles_done / self.total_tiles if self.total_tiles else 1.0
        filled = round(width * frac)
        return f"[{'#' * filled}{'.' * (width - filled)}] {self.line()}"

    def _clear_line(self) -> None:
        if self.is_tty and self.stream is not None:
            self.stream.write("\r\x1b[2K")

    def _maybe_draw(self) -> None:
        if not self.enabled or self.stream is None:
            return
        now = time.perf_counter()
        if self.is_tty:
            if now - self._last >= 0.2 or self.tiles_done == self.total_tiles:
                self.stream.write("\r" + self._bar())
                self.stream.flush()
                self._last = now
        elif now - self._last >= self.interval_s or self.tiles_done == self.total_tiles:
            self._printed_at = self.tiles_done
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._last = now
