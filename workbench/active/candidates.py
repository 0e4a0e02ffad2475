"""Where the improve loop looks for configurations to label: a pool, the geometries of a scan, or MD driven by the
model itself.

A candidate source is a callable ``source(model, round) -> Dataset`` (geometries in Å; a pool may carry labels,
which the loop uses instead of computing them when asked to). The sources here are small dataclasses with their
settings in the constructor; any function of that shape works as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from ..analysis.coordinates import coordinate_from
from ..analysis.pes import frames_for
from ..data.dataset import Dataset, concatenate
from ..data.io import load
from ..harmonic import bond_graph
from ..qm.sampling import langevin_md


@dataclass
class Pool:
    """Every configuration of a dataset (or of a file :func:`workbench.load` reads) not yet taken.

    With labels at the loop's level in the pool itself, the loop can *reveal* them instead of computing them
    (``improve(..., reveal=True)``): the benchmark way of asking "which labels would have been worth
    computing", with the answers known in advance.
    """

    data: Dataset | str | Path

    def __post_init__(self):
        if not isinstance(self.data, Dataset):
            self.data = load(self.data)

    def __call__(self, model, round: int) -> Dataset:
        return self.data


@dataclass
class ScanGeometries:
    """The geometries of a 1D scan from ``atoms`` along one coordinate (as :func:`workbench.analysis.scan`):
    ``kind`` is ``"bond"``, ``"angle"``, ``"dihedral"`` or ``"mode"``, ``indices`` its atoms, ``values`` the
    points (Å or degrees)."""

    atoms: Atoms
    kind: str
    indices: Sequence[int]
    values: Sequence[float]

    def __call__(self, model, round: int) -> Dataset:
        coordinate = coordinate_from(self.kind, tuple(self.indices), np.asarray(self.values, float))
        frames, measured = frames_for(self.atoms, [coordinate])
        ds = Dataset.from_configurations(
            [{"numbers": f.numbers, "positions": f.positions, "info": {"source": "scan"}} for f in frames]
        )
        ds.info[self.kind] = measured[:, 0]
        return ds


@dataclass
class ModelMD:
    """Configurations from Langevin MD (ASE) at ``temperature_K`` driven by the model itself: where the model
    takes the molecule is where it must be right. Each round runs from ``atoms`` with its own seed, keeping
    ``n_samples`` frames ``interval`` steps apart after ``equilibration_steps`` (``timestep_fs`` in fs).

    A rough model can tear the molecule apart; such frames teach nothing about the molecule and, labelled, pull
    the model toward broken bonds. With ``same_bonds`` (the default) only frames whose bonded graph
    (:func:`workbench.harmonic.bond_graph`) is the starting geometry's are offered.
    """

    atoms: Atoms
    temperature_K: float = 500.0
    n_samples: int = 50
    interval: int = 10
    equilibration_steps: int = 100
    timestep_fs: float = 0.5
    seed: int = 0
    fidelity: str | None = None
    same_bonds: bool = True
    options: dict = field(default_factory=dict)

    def __call__(self, model, round: int) -> Dataset:
        calculator = model.calculator(fidelity=self.fidelity)
        ds = langevin_md(
            self.atoms,
            self.n_samples,
            self.temperature_K,
            calculator=calculator,
            timestep_fs=self.timestep_fs,
            interval=self.interval,
            equilibration_steps=self.equilibration_steps,
            seed=self.seed + 7919 * round,
            **self.options,
        )
        ds.info["source"] = f"model md {self.temperature_K:g} K, round {round}"
        if self.same_bonds:
            start = bond_graph(self.atoms)
            intact = [i for i in range(len(ds)) if np.array_equal(bond_graph(ds.to_atoms(i)), start)]
            if not intact:
                raise ValueError(
                    f"MD driven by the model at {self.temperature_K:g} K broke the molecule's bonds in all "
                    f"{len(ds)} frames: the model is too rough to drive MD yet; train it longer, lower the "
                    "temperature, or take candidates from a pool or a scan first"
                )
            ds = ds.select(intact)
        return ds


def as_source(candidates):
    """A candidate source from what a user passes: a source, a Dataset or a file (a :class:`Pool`), or a list
    of sources whose candidates are put together (a source with none in a round is left out that round)."""
    if isinstance(candidates, (Dataset, str, Path)):
        return Pool(candidates)
    if isinstance(candidates, (list, tuple)):
        sources = [as_source(c) for c in candidates]
        return lambda model, round: _together(sources, model, round)
    if callable(candidates):
        return candidates
    raise TypeError(
        f"candidates: a Dataset, a file, Pool(...), ScanGeometries(...), ModelMD(...) or a function of "
        f"(model, round); got {type(candidates).__name__}"
    )


def _together(sources: list, model, round: int) -> Dataset:
    """The candidates of several sources in one dataset. A source that has none this round (model MD that broke
    the molecule every time) is left out while the others have some; when none has any, the first one's reason
    is raised."""
    parts, reasons = [], []
    for source in sources:
        try:
            part = source(model, round)
        except ValueError as reason:
            reasons.append(reason)
            continue
        if len(part):
            parts.append(part)
    if not parts:
        raise reasons[0] if reasons else ValueError(f"round {round}: no source gave a candidate")
    return concatenate(parts)
