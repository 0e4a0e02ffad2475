"""The checks every Dataset passes when it is made
(:meth:`Dataset.validate <workbench.data.dataset.Dataset.validate>`)."""

from __future__ import annotations

import numpy as np

from .errors import DatasetError

_CHECK_CHUNK = 1 << 20


def validate(ds) -> None:
    """:meth:`Dataset.validate <workbench.data.dataset.Dataset.validate>` of ``ds``: shapes and values checked,
    a :class:`DatasetError` naming the configuration for the first thing wrong."""
    n, a = len(ds), len(ds.numbers)
    if ds.ptr.ndim != 1 or ds.ptr[0] != 0 or ds.ptr[-1] != a or np.any(np.diff(ds.ptr) < 0):
        raise DatasetError(f"ptr must rise from 0 to the number of atoms ({a})")
    if ds.positions.shape != (a, 3):
        raise DatasetError(f"positions have shape {ds.positions.shape}, expected ({a}, 3)")
    # In chunks of atoms, so checking a file of millions of configurations needs little memory.
    for lo in range(0, a, _CHECK_CHUNK):
        z = ds.numbers[lo : lo + _CHECK_CHUNK]
        bad = np.flatnonzero((z < 1) | (z > 118))
        if len(bad):
            i = ds.configuration_of_atoms([lo + bad[0]])[0]
            raise DatasetError(f"unknown element with atomic number {z[bad[0]]}", configuration=int(i))
        bad = np.flatnonzero(~np.isfinite(ds.positions[lo : lo + _CHECK_CHUNK]).all(axis=1))
        if len(bad):
            i = ds.configuration_of_atoms([lo + bad[0]])[0]
            raise DatasetError("positions contain NaN or infinite values", configuration=int(i))
    if len(ds.info) != n:
        raise DatasetError(f"info table has {len(ds.info)} rows for {n} configurations")
    for name, lab in ds.labels.items():
        if lab.energy.shape != (n,) or lab.energy_mask.shape != (n,) or lab.forces_mask.shape != (n,):
            raise DatasetError(f"energy labels of fidelity {name!r} do not have one entry per configuration ({n})")
        if lab.forces is not None and lab.forces.shape != (a, 3):
            raise DatasetError(f"forces of fidelity {name!r} have shape {lab.forces.shape}, expected ({a}, 3)")
        inf_e = np.isinf(lab.energy)
        if inf_e.any():
            raise DatasetError(f"infinite energy at fidelity {name!r}", configuration=int(np.flatnonzero(inf_e)[0]))
