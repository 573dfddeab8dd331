"""New fence pieces among parallel crop strips in both epochs are dropped (issue 5)."""

from __future__ import annotations

import numpy as np
from shapely.geometry import LineString

from bordewatch.detect.classical import NEW_FENCE_MAX_STRIPES, _drop_among_stripes
from bordewatch.detect.lines import LinePiece, surround_variation

GSD = 1.0
LINE = LineString([(100.0, 20.0), (100.0, 180.0)])  # x = col: a north-south piece at col 100


def _striped(period_px: int, amplitude: float, *, across: bool = False) -> np.ndarray:
    """MAD-unit image of strips parallel to the line (or across it), 200 x 200 px."""
    idx = np.arange(200)
    bands = amplitude * ((idx // (period_px // 2)) % 2 * 2 - 1).astype(np.float32)
    img = np.tile(bands, (200, 1)) if not across else np.tile(bands[:, None], (1, 200))
    return np.ascontiguousarray(img, dtype=np.float32)


def test_parallel_strips_add_up_and_crossing_ones_do_not() -> None:
    strips = _striped(12, 2.0)
    # 8-40 m either side: ~5 strip boundaries a side, each a step of 4 units
    assert surround_variation(LINE, strips, GSD) >= 30.0
    assert surround_variation(LINE, np.zeros((200, 200), np.float32), GSD) == 0.0
    # strips crossing the line: the median along it stays put at every offset
    assert surround_variation(LINE, _striped(12, 2.0, across=True), GSD) < 1.0


def _piece(status: str = "new") -> tuple[str, LinePiece]:
    return ("fence", LinePiece(status=status, score=0.9, line=LINE))


def test_new_fence_among_strips_in_both_epochs_is_dropped() -> None:
    strips, plain = _striped(12, 2.0), np.zeros((200, 200), np.float32)
    # 0.1: a unit is 10 % of the median brightness; the strips' ~40 units are 4x that median
    rel = (0.1, 0.1)
    assert surround_variation(LINE, strips, GSD) * 0.1 > NEW_FENCE_MAX_STRIPES
    assert _drop_among_stripes([_piece()], (strips, strips), rel, GSD) == []
    # striped in one epoch only (a field sown after), plain surroundings, or an existing
    # fence: kept
    for zs in ((strips, plain), (plain, strips), (plain, plain)):
        assert len(_drop_among_stripes([_piece()], zs, rel, GSD)) == 1
    assert len(_drop_among_stripes([_piece("existing")], (strips, strips), rel, GSD)) == 1
    # faint strips (1 % of the median per unit) are ordinary field texture: kept
    assert len(_drop_among_stripes([_piece()], (strips, strips), (0.01, 0.01), GSD)) == 1
    # no usable brightness level: no test
    assert len(_drop_among_stripes([_piece()], (strips, strips), (0.0, 0.1), GSD)) == 1
