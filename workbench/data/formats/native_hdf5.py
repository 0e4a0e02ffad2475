"""The workbench's own HDF5 file as one of :func:`workbench.load`'s readers; the layout, and the
writing and reading of it, are :mod:`workbench.data.native_file`."""

from __future__ import annotations

from ..dataset import Dataset
from ..native_file import FORMAT, UNITS, VERSION, is_native, write

__all__ = ["FORMAT", "UNITS", "VERSION", "is_native", "read", "write"]


def read(path, **options) -> Dataset:
    """Read a file written by :func:`write` (eV, Å)."""
    if options:
        raise TypeError(f"the workbench HDF5 reader takes no options, got {sorted(options)}")
    return Dataset.load(path)
