"""New fences that the *after* shows under snow, across fields the *before* shows busy (issue 5).

The difference of the epochs is swamped there by all that the snow covered; the *after* epoch's
own lines are clear. Pieces of them the *before* lacks are taken as new candidates
(:func:`bordewatch.detect.classical._absent_before`) and pass the usual tests. Scenes from
:func:`bordewatch.synth.render_pair`: the ``hard`` preset with snow in every *after*, no cloud.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from conftest import make_tile

from bordewatch import align
from bordewatch.detect import classical
from bordewatch.imagery import TilePair
from bordewatch.results import DetectConfig
from bordewatch.synth import render_pair
from bordewatch.synth.presets import get_preset


def _new_fence(preset: str, seed: int, after_only: bool) -> tuple[float, float, float]:
    """Truth new fence length, predicted new fence length and its part within 5 m of truth (m)."""
    snowy = get_preset(preset, snow_after_prob=1.0, cloud_prob=0.0, gsd_m=1.0)
    sp = render_pair(size_px=(512, 512), gsd_m=1.0, preset=snowy, rng=seed)
    tile = make_tile(sp.valid.shape, 1.0)
    pair = align.normalise(
        align.coregister(TilePair(tile, sp.before, sp.after, sp.valid, sp.bands))
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(classical, "AFTER_ONLY_FENCES", after_only)
        mp.setattr(classical, "AFTER_ONLY_BELTS", after_only)
        out = classical.detect_classical(pair, DetectConfig())
    inv = ~tile.affine
    pred = [
        shapely.transform(d.geometry, lambda xy: np.column_stack(inv @ (xy[:, 0], xy[:, 1])) - 0.5)
        for d in out.detections
        if d.cls == "fence" and d.status == "new"
    ]
    truth = [t.geometry for t in sp.truth if t.cls == "fence" and t.status == "new"]
    tu = shapely.union_all(truth) if truth else shapely.LineString()
    pu = shapely.union_all(pred) if pred else shapely.LineString()
    return tu.length, pu.length, pu.intersection(tu.buffer(5.0)).length


def test_new_fence_under_snow_is_found_from_the_after_epoch() -> None:
    truth, pred, right = _new_fence("hard", 2, after_only=True)
    assert truth > 500
    assert right > 0.3 * truth  # the difference alone finds none of it (below)
    assert right > 0.8 * pred


def test_the_difference_alone_misses_it() -> None:
    _, pred, _ = _new_fence("hard", 2, after_only=False)
    assert pred == 0.0


def test_snow_over_unchanged_ground_is_no_new_fence() -> None:
    _, pred, _ = _new_fence("nothing_new", 2, after_only=True)
    assert pred < 30.0
