"""The resume cache: one small JSON file per finished tile in ``DIR/.tiles/``.

A tile's file is named ``<tile_id>-<key>.json`` where ``key`` hashes the identities of the input
files (path, size, mtime), every parameter that changes outputs, and the bordewatch version. A
run with other inputs or parameters therefore never picks up a stale tile, and ``--resume`` on
such a run is refused with the parameter that differs (:func:`check_resume`).

The files are plain JSON with geometries as WKB hex: nothing is unpickled from disk, so a run
folder from someone else cannot execute code. Every file is written atomically (temp + rename),
so a run killed at any moment leaves only whole tile files behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from bordewatch import __version__
from bordewatch.atomic import atomic_write_text
from bordewatch.errors import ResumeMismatchError
from bordewatch.results import Detection, TileResult

__all__ = [
    "CACHE_DIRNAME",
    "RUN_KEY_FILE",
    "TileCache",
    "check_resume",
    "file_identity",
    "result_from_json",
    "result_to_json",
    "run_key",
]

CACHE_DIRNAME = ".tiles"
RUN_KEY_FILE = "run-key.json"
_FORMAT = 1


def file_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return what identifies an input file cheaply: absolute path, size and mtime (ns).

    Examples
    --------
    >>> import tempfile
    >>> f = tempfile.NamedTemporaryFile(delete=False); _ = f.write(b"abc"); f.close()
    >>> file_identity(f.name)["bytes"]
    3
    """
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def run_key(inputs: Mapping[str, Any], parameters: Mapping[str, Any]) -> str:
    """Hash input identities, parameters and the bordewatch version into a 16-hex-digit key.

    Examples
    --------
    >>> run_key({"a": 1}, {"b": 2}) == run_key({"a": 1}, {"b": 2})
    True
    >>> run_key({"a": 1}, {"b": 2}) == run_key({"a": 1}, {"b": 3})
    False
    """
    payload = {"version": __version__, "inputs": inputs, "parameters": parameters}
    text = json.dumps(payload, sort_keys=True, default=_json_default, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_resume(cache_dir: Path, inputs: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
    """Refuse to resume a run folder made with other inputs, parameters or version.

    Raises
    ------
    ResumeMismatchError
        Naming the first parameter (or input, or the version) that differs.
    """
    path = cache_dir / RUN_KEY_FILE
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ResumeMismatchError(f"--resume: cannot read {path} ({err}); use --overwrite") from err
    new = _normalise({"version": __version__, "inputs": inputs, "parameters": parameters})
    for section in ("version", "inputs", "parameters"):
        before, now = old.get(section), new[section]
        if before == now:
            continue
        name = _first_difference(before, now, section)
        raise ResumeMismatchError(
            f"--resume: {cache_dir.parent} was made with {name} = {_short(before, name, section)}, "
            f"this run has {_short(now, name, section)}; use the same options, --overwrite, or "
            "another --out folder"
        )


def _first_difference(old: Any, new: Any, section: str) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return key if section == "parameters" else f"{section}.{key}"
    return section


def _short(value: Any, name: str, section: str) -> str:
    key = name.removeprefix(f"{section}.")
    if isinstance(value, dict) and key in value:
        value = value[key]
    text = json.dumps(value, sort_keys=True, default=_json_default)
    return text if len(text) <= 120 else text[:117] + "..."


@dataclass(frozen=True, slots=True)
class TileCache:
    """The run folder's tile cache: ``directory`` holds ``<tile_id>-<key>.json`` files.

    Attributes
    ----------
    directory : Path
        ``DIR/.tiles``.
    key : str
        The run key (:func:`run_key`).
    """

    directory: Path
    key: str

    def path(self, tile_id: str) -> Path:
        """The cache file of one tile."""
        return self.directory / f"{tile_id}-{self.key}.json"

    def change_path(self, tile_id: str) -> Path:
        """Where a worker writes the tile's change-score window."""
        return self.directory / f"{tile_id}-{self.key}.change.tif"

    def prepare(self, inputs: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
        """Create the folder and record the run key with its inputs and parameters.

        Temporary files left by a run that was killed while writing a tile are removed.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob(".tmp-*"):
            stale.unlink(missing_ok=True)
        record = {
            "key": self.key,
            "version": __version__,
            "inputs": inputs,
            "parameters": parameters,
        }
        text = json.dumps(_normalise(record), sort_keys=True, indent=1, default=_json_default)
        atomic_write_text(self.directory / RUN_KEY_FILE, text + "\n")

    def clear(self) -> None:
        """Remove the whole cache folder (``--overwrite``)."""
        if self.directory.is_dir():
            shutil.rmtree(self.directory)

    def load(self, tile_id: str) -> TileResult | None:
        """Return a cached tile result, or ``None`` when absent or unreadable."""
        path = self.path(tile_id)
        try:
            text = path.read_text(encoding="utf-8")
            return result_from_json(text, self.directory)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, shapely.errors.GEOSException):
            return None  # a damaged file is recomputed, never trusted

    def store(self, result: TileResult) -> TileResult:
        """Write a tile result atomically; return it as it reads back (the canonical form)."""
        text = result_to_json(result)
        atomic_write_text(self.path(result.tile_id), text)
        return result_from_json(text, self.directory)

    def done(self, tile_ids: Iterable[str]) -> dict[str, TileResult]:
        """Load every cached result among ``tile_ids``."""
        found = {}
        for tile_id in tile_ids:
            result = self.load(tile_id)
            if result is not None and result.error is None:
                found[tile_id] = result
        return found


# ---------------------------------------------------------------------- (de)serialisation
def result_to_json(result: TileResult) -> str:
    """Serialise a :class:`TileResult` to JSON text (geometries as WKB hex, no pickle).

    ``change_path`` is stored as a bare file name (relative to the cache folder), so a run
    folder can be moved and still resumed.
    """
    record = {
        "format": _FORMAT,
        "tile_id": result.tile_id,
        "crs": result.crs,
        "method": result.method,
        "detections": [
            {"cls": d.cls, "status": d.status, "score": float(d.score), "wkb": _wkb(d.geometry)}
            for d in result.detections
        ],
        "analysed": _wkb(result.analysed),
        "analysed_fraction": float(result.analysed_fraction),
        "shift_px": [float(v) for v in result.shift_px],
        "shift_quality": float(result.shift_quality),
        "change_path": None if result.change_path is None else Path(result.change_path).name,
        "seconds": float(result.seconds),
        "error": result.error,
        "info": _normalise(result.info),
    }
    return json.dumps(record, sort_keys=True, default=_json_default, allow_nan=True) + "\n"


def result_from_json(text: str, directory: Path) -> TileResult:
    """Rebuild a :class:`TileResult` from :func:`result_to_json` text."""
    record = json.loads(text)
    if record.get("format") != _FORMAT:
        raise ValueError(f"unknown tile cache format {record.get('format')!r}")
    detections = tuple(
        Detection(
            cls=str(d["cls"]),
            status=str(d["status"]),
            score=float(d["score"]),
            geometry=shapely.from_wkb(bytes.fromhex(d["wkb"])),
        )
        for d in record["detections"]
    )
    change = record["change_path"]
    return TileResult(
        tile_id=str(record["tile_id"]),
        crs=str(record["crs"]),
        method=str(record["method"]),
        detections=detections,
        analysed=shapely.from_wkb(bytes.fromhex(record["analysed"])),
        analysed_fraction=float(record["analysed_fraction"]),
        shift_px=(float(record["shift_px"][0]), float(record["shift_px"][1])),
        shift_quality=float(record["shift_quality"]),
        change_path=None if change is None else str(directory / change),
        seconds=float(record["seconds"]),
        error=record["error"],
        info=dict(record["info"]),
    )


def _wkb(geom: shapely.Geometry) -> str:
    return shapely.to_wkb(geom, hex=True, output_dimension=2, byte_order=1)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, shapely.Geometry):
        return _wkb(value)
    raise TypeError(f"cannot store {type(value).__name__} in the tile cache")


def _normalise(value: Any) -> Any:
    """Round-trip through JSON so comparisons see what the file holds (tuples -> lists, ...)."""
    text = json.dumps(value, sort_keys=True, default=_json_default, allow_nan=True)
    return json.loads(text)
