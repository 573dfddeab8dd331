"""bordewatch: find new border infrastructure in before/after satellite imagery."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bordewatch")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
