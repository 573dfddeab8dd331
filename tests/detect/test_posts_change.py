"""New-tower mechanisms: the change window, the roof next to the shadow, compact roofs, darkening.

Each test pins one mechanism that the tuning scenes lost towers (or gained phantoms) on:

- the change maps absorbed 3 m of misregistration, so any dark texture of the other epoch
  within 3 m of a new shadow erased it (about half the new towers of the demo scenes);
- the roof was the strongest compact bright pixel up to 15 m beyond the shadow, often a
  bright lane or field further on, not the roof at the shadow's start;
- a bright *patch* (a sand bank the river left, a field) beside a dark one passed as roof
  and shadow;
- ground that stayed as it was read as a new shadow when its surroundings brightened.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import make_tile

from bordewatch.detect import posts
from bordewatch.detect.posts import (
    Tower,
    TowerParams,
    detect_towers,
    find_towers,
    north_pixel_dir,
    sun_azimuth_to_pixel_dir,
    tower_maps,
)

SHAPE = (200, 200)
BANDS = ("red", "green", "blue")
AFF = make_tile(SHAPE).affine
NORTH = north_pixel_dir(AFF)
SD = sun_azimuth_to_pixel_dir(180.0, AFF)  # shadows point north (up)


def _field(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.empty((3, *SHAPE), np.float32)
    for b, v in enumerate((0.24, 0.33, 0.2)):
        img[b] = v * (1 + rng.normal(scale=0.03, size=SHAPE))
    return img


def _tower(img: np.ndarray, row: int, col: int, size: int = 4, length: int = 10) -> None:
    """Shadow ``length`` px north of a ``size`` px roof (light grey), 70 % darker."""
    h = size // 2
    img[:, row - h - length : row - h, col - h : col - h + size] *= 0.3
    img[:, row - h : row - h + size, col - h : col - h + size] = 0.7


def _new(before: np.ndarray, after: np.ndarray, params: TowerParams) -> list[Tower]:
    valid = np.ones(SHAPE, bool)
    out, _ = detect_towers(
        before, after, valid, BANDS, 1.0, params, north=NORTH, shadow_dirs=(SD, SD)
    )
    return [t for st, _, t in out if st == "new"]


def _near(towers: list[Tower], row: float, col: float, tol: float = 5.0) -> bool:
    return any(np.hypot(t.row - row, t.col - col) <= tol for t in towers)


def test_new_tower_on_dotted_ground_survives_the_change_window() -> None:
    """Small dark dots every 5 m in both epochs (orchard, tussocks): the tower is still new.

    With a 3 m window (the old default) every pixel had a dot of the other epoch within
    reach, the shadow's darkness was cancelled and no tower was found.
    """
    before, after = _field(0), _field(1)
    for img in (before, after):
        img[:, 2::5, 2::5] *= 0.35
    _tower(after, 120, 100)
    params = TowerParams()
    assert params.change_shift_m <= 1.5
    assert _near(_new(before, after, params), 120, 100)
    # the mechanism: the old 3 m window loses it
    assert not _near(_new(before, after, replace(params, change_shift_m=3.0)), 120, 100)


def test_roof_is_taken_at_the_shadow_start_not_a_brighter_spot_beyond() -> None:
    """A brighter compact spot 9 m beyond the roof (sun side) does not pull the tower there."""
    img = _field(2)
    _tower(img, 100, 100)
    img[:, 108:111, 99:102] = 0.95  # a brighter 3 m spot further along the sun direction
    maps = tower_maps(img, np.ones(SHAPE, bool), BANDS, 1.0, TowerParams())
    got, _ = find_towers(maps, TowerParams(), SD, north=NORTH, crowd=False)
    assert _near(got, 100, 100, tol=2.5), [(t.row, t.col) for t in got]
    # the old choice (strongest spot in reach, no preference for the start) went to the spot
    far = replace(TowerParams(), roof_near_m=1e6)
    old, _ = find_towers(maps, far, SD, north=NORTH, crowd=False)
    assert not _near(old, 100, 100, tol=2.5)


def test_compact_roof_patch() -> None:
    roof = np.zeros((60, 60), np.float32)
    roof[10:14, 10:14] = 1.0  # a 4 m roof: 16 px
    roof[30:50, 30:50] = 1.0  # a 20 m bright field: 400 px
    assert posts._compact_roof(roof, 11, 11, 0.5, 80.0)
    assert not posts._compact_roof(roof, 40, 40, 0.5, 80.0)
    assert not posts._compact_roof(roof, 31, 31, 0.5, 80.0)  # its corner too
    assert posts._compact_roof(roof, 0, 0, 0.5, 80.0)  # below the level: nothing to measure


def test_new_bright_patch_beside_a_dark_one_is_no_tower() -> None:
    """A 16 m sand bank appears with a dark strip on its north side: not a roof and shadow."""
    before, after = _field(3), _field(4)
    after[:, 110:126, 92:108] = np.array([0.75, 0.7, 0.6], np.float32)[:, None, None]
    after[:, 104:110, 98:102] *= 0.3
    _tower(after, 60, 150)  # a real one elsewhere
    got = _new(before, after, TowerParams())
    assert _near(got, 60, 150)
    assert not _near(got, 110, 100, tol=10.0), [(t.row, t.col) for t in got]
    old = _new(before, after, replace(TowerParams(), max_roof_m2=0.0))
    assert _near(old, 110, 100, tol=10.0)  # without the compactness test it was reported


def test_darkened_keeps_cast_shadows_and_drops_brightened_surroundings() -> None:
    """``_darkened``: the shadow place itself must get darker, not only its surroundings."""
    valid = np.ones(SHAPE, bool)
    params = TowerParams()
    before = _field(5)
    after = before.copy()
    _tower(after, 60, 60)  # a real shadow
    # unchanged ground at (140, 140) whose surroundings turned bright (water fell, sand shows)
    after[:, 120:160, 120:160] = np.array([0.75, 0.7, 0.6], np.float32)[:, None, None]
    after[:, 136:145, 138:143] = before[:, 136:145, 138:143]
    ma = tower_maps(after, valid, BANDS, 1.0, params)
    real = Tower(60, 60, 0.8, 0.5, 52, 60)
    stayed = Tower(146, 140, 0.8, 0.5, 140, 140)
    assert float(ma.shade[140, 140]) >= ma.dark_thr  # reads as dark against its surroundings
    found = [("new", 0.9, real), ("new", 0.9, stayed)]
    kept = posts._darkened(found, after, before, valid, BANDS, ma, params)
    assert [f[2] for f in kept] == [real]
    assert posts._darkened(found, after, before, valid, BANDS, ma, replace(params, darkened=0.0))


def test_towers_near_match_the_whole_tile_search_around_them() -> None:
    """``_towers_near`` (windows around candidates) finds what the whole-tile search finds."""
    img = _field(6)
    for r, c in ((50, 50), (60, 150), (150, 90)):
        _tower(img, r, c)
    loose = posts.loose_tower_params(TowerParams())
    maps = tower_maps(img, np.ones(SHAPE, bool), BANDS, 1.0, loose)
    full, _ = find_towers(maps, loose, SD, north=NORTH, crowd=False)
    probe = [Tower(61, 149, 0.8, 0.5, 55, 149)]
    got = posts._towers_near(maps, probe, loose, SD, NORTH)
    assert _near(got, 60, 150, tol=2.0)

    def close(ts: list[Tower]) -> list[tuple[float, float]]:
        return sorted((round(t.row, 6), round(t.col, 6)) for t in ts if _near([t], 61, 149, 40.0))

    assert close(got) == close(full)
    assert posts._towers_near(maps, [], loose, SD, NORTH) == []


SAND = np.array([0.75, 0.7, 0.6], np.float32)[:, None, None]
RED = np.array([0.8, 0.3, 0.25], np.float32)[:, None, None]


def _lane_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """*After* adds a 6 m sandy lane north-south (a widened patrol lane) and a red 4 m roof at
    its east edge, its shadow 8 m north of it on the field beside the lane."""
    before = _field(seed)
    after = before.copy()
    after[:, :, 94:100] = SAND
    after[:, 122:126, 100:104] = RED
    after[:, 114:122, 100:104] *= 0.3
    return before, after


def test_roof_beside_a_bright_lane_is_found_by_its_colour() -> None:
    """A roof touching a bright lane joins the lane in roof contrast but not in colour.

    Hoeryong-like tuning scenes lost most new towers this way: the roof's patch ran into the
    lane (not compact) and the line test along the lane found the lane as bright as the roof.
    """
    before, after = _lane_pair(7)
    got = _new(before, after, TowerParams())
    assert _near(got, 124, 102, tol=3.0), [(t.row, t.col) for t in got]
    # the mechanism: by roof contrast alone the tower is lost
    assert not _near(_new(before, after, replace(TowerParams(), roof_colour=False)), 124, 102)


def test_lane_pixels_do_not_stand_out_by_colour() -> None:
    """``_colour_stand_out`` and ``_compact_colour``: a lane keeps its colour along itself, a
    roof differs from its surroundings in every direction and is a small patch of its colour."""
    _, after = _lane_pair(8)
    maps = tower_maps(after, np.ones(SHAPE, bool), BANDS, 1.0, TowerParams())
    lr = maps.logratio
    rows, cols = np.array([60, 123]), np.array([96, 101])  # on the lane; on the roof
    lines = posts._line_samples(lr.shape[1:], rows, cols, 7.5)
    flat, pix = lr.reshape(lr.shape[0], -1), rows * lr.shape[2] + cols
    across = np.zeros(2, np.int64)  # measured first: west-east, across the lane
    lane, roof = posts._colour_stand_out(flat, pix, lines, across, 0.0)
    assert lane < 0.1 < 0.5 < roof
    # a bar above the lane's distance zeroes it; the direction measured first changes nothing
    along = np.full(2, 4, np.int64)  # north-south, along the lane
    for first in (across, along):
        got = posts._colour_stand_out(flat, pix, lines, first, 0.3)
        assert got[0] == 0.0 and got[1] == roof
    assert posts._compact_colour(lr, 123, 101, 0.5, 80.0)
    assert not posts._compact_colour(lr, 60, 96, 0.5, 80.0)  # the lane runs out of the window


def _crowded_after(n_blobs: int, elongated: bool = False) -> np.ndarray:
    """*after* with a tower at (100, 100) and ``n_blobs`` compact dark blobs 15-25 m around it."""
    img = _field(6)
    _tower(img, 100, 100)
    for row, col in [(100, 122), (80, 78), (118, 80), (125, 115)][:n_blobs]:
        img[:, row - 2 : row + 2, col - 2 : col + 2] *= 0.3  # a 4 m tree shadow
    if elongated:  # a fence shadow 10 m east: towers stand beside fences
        img[:, 40:160, 110] *= 0.3
    return img


def test_uncrowded_drops_towers_among_compact_shadows_of_their_own_epoch() -> None:
    """A "new" tower in a wood is a crown whose shadow the change maps did not cancel.

    Counted: compact shadows of the tower's own epoch within ``crowd_m`` (not within
    ``alone_m``, the tower's own pieces); a fence's long shadow is no crowd.
    """
    valid = np.ones(SHAPE, bool)
    params = TowerParams()
    tower = Tower(100, 100, 0.8, 0.5, 93, 100)  # roof at (100, 100), shadow centroid 7 px north
    found = [("new", 0.9, tower)]

    def kept(img: np.ndarray, p: TowerParams = params) -> bool:
        maps = tower_maps(img, valid, BANDS, 1.0, p)
        return bool(posts._uncrowded(found, maps, p))

    assert params.own_crowd == 1
    assert kept(_crowded_after(0))
    assert kept(_crowded_after(1))
    assert not kept(_crowded_after(3))
    assert kept(_crowded_after(3), replace(params, own_crowd=-1))  # the test off
    assert kept(_crowded_after(0, elongated=True))


def test_own_crowd_test_end_to_end() -> None:
    """Through :func:`detect_towers`: beside a fence a new tower stays; among trees it goes.

    The trees stand in both epochs, so the change maps cancel them and only the own-epoch count
    sees them: the price of the test is a real tower built among trees.
    """
    before, after = _field(7), _crowded_after(0, elongated=True)
    before[:, 40:160, 110] *= 0.3  # the fence stood before
    assert _near(_new(before, after, TowerParams()), 100, 100)
    trees = _crowded_after(3)
    before = _field(7)
    for row, col in [(100, 122), (80, 78), (118, 80)]:
        before[:, row - 2 : row + 2, col - 2 : col + 2] *= 0.3
    assert _near(_new(before, trees, replace(TowerParams(), own_crowd=-1)), 100, 100)
    assert not _near(_new(before, trees, TowerParams()), 100, 100)


@pytest.mark.parametrize(("half", "ties"), [(2.0, False), (5.0, True), (7.5, False)])
def test_line_samples_match_rounding_each_pixel(half: float, ties: bool) -> None:
    """The offsets rounded once per parity give the indices of rounding every sample of every
    pixel (``rint`` sends ties to even, so odd and even pixels differ on half-pixel samples)."""
    shape = (40, 37)
    r = np.arange(40, dtype=np.int64).repeat(37)
    c = np.tile(np.arange(37, dtype=np.int64), 40)
    d = np.arange(max(1.0, half / 2), max(2.0, half) + 0.5)
    d = np.concatenate([-d, d])
    rr = np.rint(r[:, None, None] + posts._DIRS8[None, :, 0, None] * d).astype(np.int64)
    cc = np.rint(c[:, None, None] + posts._DIRS8[None, :, 1, None] * d).astype(np.int64)
    want = np.clip(rr, 0, shape[0] - 1) * shape[1] + np.clip(cc, 0, shape[1] - 1)
    assert np.any(np.abs(posts._DIRS8[:, :, None] * d % 1 - 0.5) < 1e-12) == ties
    np.testing.assert_array_equal(posts._line_samples(shape, r, c, half), want)
