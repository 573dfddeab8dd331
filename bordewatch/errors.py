"""Every exception and warning bordewatch raises; nothing else defines exceptions.

Each error derives from :class:`BordewatchError` *and* from the closest builtin, so callers can
catch either. Messages say what went wrong, the offending value (file, km, ...) and the fix.
"""

from __future__ import annotations

__all__ = [
    "BorderError",
    "BordewatchError",
    "BordewatchWarning",
    "CRSMismatchError",
    "DetectionError",
    "EmptyTileWarning",
    "ImageryError",
    "ModelError",
    "NoDataWarning",
    "OutputError",
    "OutputExistsError",
    "ResumeMismatchError",
    "RunFolderError",
    "SchedulerError",
    "TileError",
    "TruthError",
    "UnknownMethodError",
]


class BordewatchError(Exception):
    """Root of every error bordewatch raises on purpose (the CLI prints it as one line, exit 1)."""


class BorderError(BordewatchError, ValueError):
    """The border line file is missing, unreadable, or not one usable line."""


class ImageryError(BordewatchError, OSError):
    """An imagery file is unreadable, not georeferenced, or unusable for the run."""


class CRSMismatchError(BordewatchError, ValueError):
    """Two inputs cannot be brought into one coordinate reference system."""


class TileError(BordewatchError, ValueError):
    """A tile cannot be planned or processed (no overlap, all nodata, ...)."""


class DetectionError(BordewatchError, RuntimeError):
    """A detector failed on a tile."""


class UnknownMethodError(BordewatchError, LookupError):
    """A detection method name is not registered."""


class ModelError(BordewatchError, OSError):
    """A model weight file is missing, corrupt or incompatible."""


class OutputExistsError(BordewatchError, FileExistsError):
    """Outputs exist and neither ``--overwrite`` nor ``--resume`` was given."""


class OutputError(BordewatchError, OSError):
    """The output folder cannot be created or written."""


class ResumeMismatchError(BordewatchError, ValueError):
    """``--resume`` on a run folder made with other inputs or parameters."""


class SchedulerError(BordewatchError, ConnectionError):
    """The Dask scheduler cannot be reached."""


class TruthError(BordewatchError, ValueError):
    """A ground-truth file for evaluation is unusable."""


class RunFolderError(BordewatchError, ValueError):
    """A finished run's folder lacks a file or holds one that cannot be read (``report``)."""


class BordewatchWarning(UserWarning):
    """Root of bordewatch's warnings."""


class EmptyTileWarning(BordewatchWarning):
    """A tile has no valid before-and-after pixels and was skipped."""


class NoDataWarning(BordewatchWarning):
    """An input has much nodata (or clouds) where it was needed."""


class DiskFullError(OutputError):
    """The disk filled up while writing outputs; the earlier outputs are left as they were."""

    def __init__(self, message: str, path: object = None) -> None:
        super().__init__(message)
        self.path = path
