"""Realistic synthetic border scenes with ground truth.

``render_pair`` makes an in-memory before/after pair (pixel coordinates, no georeferencing) for
detector development, tests and training; ``make_scene`` writes georeferenced scenes on a real
border line (``bordewatch synth``).
"""

from bordewatch.synth.geo import SceneFiles, make_scene
from bordewatch.synth.plan import TruthObject
from bordewatch.synth.presets import PRESETS, Preset, get_preset
from bordewatch.synth.scene import SynthPair, render_pair

__all__ = [
    "PRESETS",
    "Preset",
    "SceneFiles",
    "SynthPair",
    "TruthObject",
    "get_preset",
    "make_scene",
    "render_pair",
]
