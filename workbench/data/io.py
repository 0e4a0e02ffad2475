"""``workbench.load``: any supported file (or several) into one Dataset.

The format is decided from the file's content, with the extension as a cross-check: a file whose
content contradicts its extension (an ``.h5`` that is text, an ``.npz`` that is SQLite) is an error
that says what the content looks like, because silently reading it as something else hides a
mix-up of files.

Each reader lives in its own module under :mod:`workbench.data.formats` and has the signature
``read(path, **options) -> Dataset``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .dataset import Dataset
from .errors import DatasetError

_MAGIC = {
    b"\x89HDF\r\n\x1a\n": "hdf5",
    b"SQLite format 3\x00": "sqlite",
    b"PK\x03\x04": "zip",
    b"- of Ulm": "ulm",  # ASE trajectory (.traj)
}

_EXTENSIONS = {
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
    ".db": "sqlite",
    ".sqlite": "sqlite",
    ".npz": "zip",
    ".traj": "ulm",
}


def sniff(path: str | os.PathLike) -> str:
    """The container of a file from its first bytes: ``hdf5``, ``sqlite``, ``zip`` or ``text``.

    Raises :class:`DatasetError` for a missing or empty file, or one whose content contradicts its
    extension.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError("no such file", file=str(path))
    if path.is_dir():
        raise DatasetError("is a directory, expected a file", file=str(path))
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head.strip():
        raise DatasetError("the file is empty", file=str(path))
    kind = next((k for magic, k in _MAGIC.items() if head.startswith(magic)), None)
    if kind is None:
        kind = "text" if _looks_like_text(head) else "binary"
    expected = _EXTENSIONS.get(path.suffix.lower())
    if expected is not None and expected != kind:
        raise DatasetError(
            f"the extension {path.suffix!r} says {expected.upper()}, but the content is {_describe(kind, head)}",
            file=str(path),
        )
    if kind == "binary":
        raise DatasetError(f"unrecognised binary content ({_describe(kind, head)})", file=str(path))
    return kind


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the 512-byte boundary is still text.
        try:
            head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return b"\x00" not in head


def _describe(kind: str, head: bytes) -> str:
    if kind == "text":
        first = head.split(b"\n", 1)[0][:40].decode("utf-8", "replace")
        return f"text starting with {first!r}"
    if kind == "binary":
        return f"binary data starting with {head[:8]!r}"
    names = {
        "hdf5": "an HDF5 file",
        "sqlite": "an SQLite database",
        "zip": "a zip/npz archive",
        "ulm": "an ASE trajectory",
    }
    return names[kind]


def read_file(path: str | os.PathLike, format: str | None = None, **options) -> Dataset:
    """Read one file into a Dataset; ``format`` forces a reader (``"workbench"``, ``"ani"``,
    ``"asedb"``, ``"npz"``, ``"ase"`` or any ASE format name such as ``"extxyz"``)."""
    from importlib import import_module

    from .formats import native_hdf5

    path = Path(path)
    if format is None:
        kind = sniff(path)
        if kind == "hdf5":
            format = "workbench" if native_hdf5.is_native(path) else "ani"
        elif kind == "sqlite":
            format = "asedb"
        elif kind == "zip":
            format = "npz"
        else:  # text, or an ASE trajectory
            format = "ase"
    modules = {"workbench": "native_hdf5", "ani": "ani_hdf5", "asedb": "ase_db", "npz": "sgdml_npz"}
    if format in modules:
        return import_module(f".formats.{modules[format]}", __package__).read(path, **options)
    reader = import_module(".formats.ase_files", __package__).read
    return reader(path, format=None if format == "ase" else format, **options)


def load(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    format: str | None = None,
    tolerance: float = 1e-4,
    **options,
) -> Dataset:
    """Load one or several files into one fidelity-mixed Dataset (eV, Å).

    Several files that label the same geometries at different levels are merged: configurations
    whose atoms match within ``tolerance`` (Å, largest coordinate difference, same atom order) become
    one configuration carrying every label. Conflicting labels for the same geometry and level are
    an error. Reader options (``fidelity=``, ``energy_unit=``, ...) apply to every file.

    Examples
    --------
    >>> ds = load("ani1x_sample.h5")
    >>> ds = load(["xtb.extxyz", "ccsdt.npz"])
    """
    from .merge import check_conflicts, merge

    if isinstance(paths, (str, os.PathLike)):
        ds = read_file(paths, format=format, **options)
        check_conflicts(ds, tolerance=tolerance)
        return ds
    parts = [read_file(p, format=format, **options) for p in paths]
    if not parts:
        raise ValueError("load() needs at least one file")
    return merge(parts, tolerance=tolerance)
