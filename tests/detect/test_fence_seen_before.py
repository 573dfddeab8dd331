"""A new fence must not have stood out before: log contrast, either sign, dimmed stretches."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from bordewatch.detect import classical
from bordewatch.detect.lines import LinePiece, log_contrast


def _ground(level: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * (1 + 0.05 * rng.standard_normal((80, 120)))).astype(np.float32)


LINE = shapely.LineString([(10, 40), (110, 40)])  # x = col, y = row: along row 40
VALID = np.ones((80, 120), bool)


def test_log_contrast_sign_and_scale():
    bright = _ground(0.2)
    bright[39:42] *= 2.0  # a line twice as bright as its ground
    c = log_contrast(LINE, bright, 1.0)
    assert c == pytest.approx(np.log(2.0), abs=0.05)
    # a shadow or darker ground scales the line with its surroundings: same value
    assert log_contrast(LINE, 0.4 * bright, 1.0) == pytest.approx(c, abs=1e-6)
    dark = _ground(0.2, seed=1)
    dark[39:42] *= 0.5
    assert log_contrast(LINE, dark, 1.0) == pytest.approx(np.log(0.5), abs=0.05)
    assert abs(log_contrast(LINE, _ground(0.2, seed=2), 1.0)) < 0.05  # no line: ~0


def _piece() -> list[tuple[str, LinePiece]]:
    return [("fence", LinePiece("new", 0.8, LINE))]


def test_a_line_absent_before_stays_new():
    before = _ground(0.2, seed=3)
    after = _ground(0.2, seed=4)
    after[39:42] *= 1.8
    assert classical._drop_seen_before(_piece(), (before, after), VALID, 1.0) == _piece()


@pytest.mark.parametrize(
    "before_factor",
    [
        1.4,  # the same line, fainter (a field beside it changed), in a dimmer stretch
        0.6,  # a track dark before and bright after (moisture, season): not new either
    ],
)
def test_a_line_standing_out_before_is_not_new(before_factor):
    before = 0.5 * _ground(0.2, seed=5)  # the before is darker there (shadow, dark ground)
    before[39:42] *= before_factor
    after = _ground(0.2, seed=6)
    after[39:42] *= 1.8
    assert classical._drop_seen_before(_piece(), (before, after), VALID, 1.0) == []
    # other classes and statuses are not this test's business
    other = [
        ("fence", LinePiece("existing", 0.8, LINE)),
        ("patrol_lane", LinePiece("removed", 0.8, LINE)),
        ("watchtower", LinePiece("new", 0.8, LINE)),
    ]
    assert classical._drop_seen_before(other, (before, after), VALID, 1.0) == other


def test_new_lanes_have_their_own_limit():
    """A lane is wider than the contrast core and often cleared along an old track: 0.6, in
    units of each epoch's texture contrast."""
    after = _ground(0.2, seed=7)
    after[39:42] *= 2.0
    lane = [("patrol_lane", LinePiece("new", 0.8, LINE))]
    fence = [("fence", LinePiece("new", 0.8, LINE))]
    half = _ground(0.2, seed=8)
    half[39:42] *= 2.0**0.5  # stood out half as much (log ratio) before
    assert classical._drop_seen_before(lane, (half, after), VALID, 1.0) == lane
    assert classical._drop_seen_before(fence, (half, after), VALID, 1.0) == []
    track = _ground(0.2, seed=9)
    track[39:42] *= 2.0**0.8  # a track 0.8 as contrasty stood there before
    assert classical._drop_seen_before(lane, (track, after), VALID, 1.0) == []
    # haze over the after dims the new lane and its surroundings alike: still new
    hazy = 0.3 * after + 0.14
    assert classical._drop_seen_before(lane, (half, hazy), VALID, 1.0) == lane
    assert abs(log_contrast(LINE, half, 1.0)) >= 0.6 * abs(log_contrast(LINE, hazy, 1.0))


def test_a_line_that_stood_out_before_is_not_new_however_strong_after():
    """Under snow an old road (a little brighter than dark fields before) is a dark band on
    white: many times its old contrast, yet it was there (``NEW_FENCE_SEEN_LOG``)."""
    before = _ground(0.15, seed=7)
    before[39:42] *= 1.2  # log 0.18 before
    after = _ground(0.85, seed=8)
    after[39:42] *= 0.3  # log -1.2 after: the relative test alone keeps it
    assert abs(log_contrast(LINE, before, 1.0)) < classical.NEW_FENCE_MAX_BEFORE * abs(
        log_contrast(LINE, after, 1.0)
    )
    assert classical._drop_seen_before(_piece(), (before, after), VALID, 1.0) == []
    faint = _ground(0.15, seed=7)
    faint[39:42] *= 1.05  # log 0.05 before: new
    assert classical._drop_seen_before(_piece(), (faint, after), VALID, 1.0) == _piece()
