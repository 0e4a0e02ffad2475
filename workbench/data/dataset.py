"""The fidelity-mixed Dataset: configurations stored flat and ragged, labels per level of theory.

Layout (``N`` configurations, ``A`` atoms in all):

- ``numbers[A]`` atomic numbers, ``positions[A, 3]`` in Å, ``ptr[N + 1]`` so that configuration ``i``
  owns atoms ``ptr[i]:ptr[i + 1]``;
- per fidelity a :class:`Labels`: ``energy[N]`` in eV and ``forces[A, 3]`` in eV/Å, each with a
  per-configuration mask of what is present. Missing values are NaN *and* masked, never a fake 0;
  a fidelity with no forces at all stores ``forces=None`` (no ``A x 3`` block of NaN);
- ``info``: a pandas DataFrame with one row per configuration (formula, n_atoms, source file,
  index in the source, and any metadata).

Positions and forces keep the floating dtype they were read with (the ANI-1x release stores
float32), so a million-configuration file costs no more memory than the raw arrays; energies are
always float64 (total energies of ~1e4 eV need it for meV resolution).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import native_file, summaries, validation
from .errors import DatasetError, reading
from .fidelity import Fidelity, canonical_name
from .labels import PROPERTIES, Labels, atom_ranges
from .references import fit_atomic_references


def formula_of(numbers: np.ndarray) -> str:
    """Hill formula (C first, then H, then alphabetical), e.g. ``C2H6O``."""
    from ase.symbols import Symbols

    return Symbols(numbers).get_chemical_formula(mode="hill")


@dataclass
class Dataset:
    """Configurations with energies and forces at several fidelities (eV, Å, eV/Å).

    Build one with :func:`workbench.load`, :meth:`from_configurations`, or from flat arrays.
    """

    numbers: np.ndarray
    positions: np.ndarray
    ptr: np.ndarray
    labels: dict[str, Labels] = field(default_factory=dict)
    fidelity_info: dict[str, Fidelity] = field(default_factory=dict)
    info: pd.DataFrame | None = None
    #: What readers did to the data: one dict per conversion or assumption (file, quantity, from, to, factor).
    provenance: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self.numbers = np.asarray(self.numbers)
        self.positions = np.asarray(self.positions)
        if self.positions.dtype.kind != "f":
            self.positions = self.positions.astype(np.float64)
        self.ptr = np.asarray(self.ptr, dtype=np.int64)
        self.labels = {canonical_name(k): v for k, v in self.labels.items()}
        for name in self.labels:
            self.fidelity_info.setdefault(name, Fidelity.parse(name))
        if self.info is None:
            self.info = pd.DataFrame(index=pd.RangeIndex(len(self)))
        if "n_atoms" not in self.info:
            self.info["n_atoms"] = np.diff(self.ptr)
        self.validate()
        if "formula" not in self.info:
            self.info["formula"] = self._formulas()

    # ----------------------------------------------------------------------------- construction
    @classmethod
    def from_configurations(
        cls,
        configurations: Iterable[Mapping],
        fidelities: Mapping[str, Fidelity] | None = None,
        provenance: list[dict] | None = None,
    ) -> Dataset:
        """Build from records ``{"numbers", "positions" (Å), "energy": {fidelity: eV},
        "forces": {fidelity: (n, 3) eV/Å}, "info": {...}}``; missing keys mean missing labels."""
        numbers, positions, sizes, infos = [], [], [], []
        energies: dict[str, list[tuple[int, float]]] = {}
        forces: dict[str, list[tuple[int, np.ndarray]]] = {}
        for i, conf in enumerate(configurations):
            z = np.asarray(conf["numbers"])
            r = np.asarray(conf["positions"], dtype=np.float64)
            if r.shape != (len(z), 3):
                raise DatasetError(f"positions have shape {r.shape}, expected ({len(z)}, 3)", configuration=i)
            numbers.append(z)
            positions.append(r)
            sizes.append(len(z))
            for fid, e in (conf.get("energy") or {}).items():
                energies.setdefault(canonical_name(fid), []).append((i, float(e)))
            for fid, f in (conf.get("forces") or {}).items():
                f = np.asarray(f, dtype=np.float64)
                if f.shape != (len(z), 3):
                    raise DatasetError(
                        f"forces at fidelity {fid!r} have shape {f.shape}, expected ({len(z)}, 3)", configuration=i
                    )
                forces.setdefault(canonical_name(fid), []).append((i, f))
            infos.append(dict(conf.get("info") or {}))
        n = len(sizes)
        ptr = np.zeros(n + 1, np.int64)
        np.cumsum(sizes, out=ptr[1:])
        labels = {}
        for fid in list(energies) + [f for f in forces if f not in energies]:
            e = np.full(n, np.nan)
            for i, value in energies.get(fid, []):
                e[i] = value
            fblock = None
            if fid in forces:
                fblock = np.full((ptr[-1], 3), np.nan)
                for i, value in forces[fid]:
                    fblock[ptr[i] : ptr[i + 1]] = value
            labels[fid] = Labels.from_values(e, fblock, ptr)
        info = pd.DataFrame(infos, index=pd.RangeIndex(n))
        return cls(
            numbers=np.concatenate(numbers) if numbers else np.zeros(0, np.int64),
            positions=np.concatenate(positions) if positions else np.zeros((0, 3)),
            ptr=ptr,
            labels=labels,
            fidelity_info=dict(fidelities or {}),
            info=info,
            provenance=list(provenance or []),
        )

    # ----------------------------------------------------------------------------- checks
    def validate(self) -> None:
        """Check shapes and values; raise :class:`DatasetError` naming the configuration."""
        validation.validate(self)

    # ----------------------------------------------------------------------------- basic views
    def __len__(self) -> int:
        return len(self.ptr) - 1

    @property
    def n_atoms(self) -> np.ndarray:
        """Number of atoms of each configuration, ``(N,)``."""
        return np.diff(self.ptr)

    @property
    def fidelities(self) -> list[Fidelity]:
        """The fidelities present, ordered from low to high rank."""
        return sorted((self.fidelity_info[k] for k in self.labels), key=lambda f: (f.rank, f.name))

    @property
    def fidelity_names(self) -> list[str]:
        return [f.name for f in self.fidelities]

    @property
    def elements(self) -> np.ndarray:
        """Sorted atomic numbers present."""
        return np.unique(self.numbers)

    def configuration_of_atoms(self, atom_index: np.ndarray | None = None) -> np.ndarray:
        """Index of the configuration each atom belongs to (all atoms when ``atom_index`` is None)."""
        if atom_index is None:
            return np.repeat(np.arange(len(self)), self.n_atoms)
        return np.searchsorted(self.ptr, np.asarray(atom_index), side="right") - 1

    def _formulas(self) -> pd.Categorical:
        # One formula per distinct composition, not per configuration: cheap for millions of configurations.
        if len(self) == 0:
            return pd.Categorical([])
        comp = self.composition_matrix()
        uniq, inverse = np.unique(comp, axis=0, return_inverse=True)
        names = [formula_of(np.repeat(self.elements, row)) for row in uniq]
        return pd.Categorical.from_codes(inverse.ravel(), categories=names)  # one name per composition

    def composition_matrix(self, elements: Sequence[int] | None = None) -> np.ndarray:
        """``(N, n_elements)`` counts of each element (columns follow ``elements``, default all present)."""
        elements = self.elements if elements is None else np.asarray(elements)
        col = np.searchsorted(elements, self.numbers)
        col = np.clip(col, 0, len(elements) - 1)
        known = elements[col] == self.numbers
        flat = self.configuration_of_atoms()[known] * len(elements) + col[known]
        return np.bincount(flat, minlength=len(self) * len(elements)).reshape(len(self), len(elements))

    def fidelity(self, name: str | Fidelity) -> Fidelity:
        """The :class:`Fidelity` of a name in any accepted spelling; KeyError lists those present."""
        return self.fidelity_info[canonical_name(name, self.fidelity_names, "in this dataset")]

    def energy(self, fidelity: str | Fidelity) -> tuple[np.ndarray, np.ndarray]:
        """``(energy[N] in eV, mask[N])`` at a fidelity."""
        lab = self.labels[self.fidelity(fidelity).name]
        return lab.energy, lab.energy_mask

    def forces(self, fidelity: str | Fidelity) -> tuple[np.ndarray | None, np.ndarray]:
        """``(forces[A, 3] in eV/Å or None, mask[N])`` at a fidelity."""
        lab = self.labels[self.fidelity(fidelity).name]
        return lab.forces, lab.forces_mask

    def set_rank(self, fidelity: str | Fidelity, rank: float) -> Dataset:
        """Override the low-to-high rank of a fidelity (in place; returns self)."""
        fid = self.fidelity(fidelity)
        self.fidelity_info[fid.name] = fid.with_rank(rank)
        return self

    # ----------------------------------------------------------------------------- selection
    def _as_index(self, indices) -> np.ndarray:
        if isinstance(indices, slice):
            return np.arange(len(self))[indices]
        # np.asarray handles arrays, lists and ranges; other iterables (generators) are listed first.
        idx = np.asarray(indices if isinstance(indices, (Sequence, np.ndarray)) else list(indices))
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"boolean selection has length {len(idx)}, dataset has {len(self)}")
            return np.flatnonzero(idx)
        idx = idx.astype(np.int64).ravel()
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"configuration index out of range for a dataset of {len(self)}")
        return np.where(idx < 0, idx + len(self), idx)

    def select(self, indices) -> Dataset:
        """A new dataset with the chosen configurations (indices, a slice or a boolean mask), in that order."""
        idx = self._as_index(indices)
        sizes = self.n_atoms[idx]
        ptr = np.zeros(len(idx) + 1, np.int64)
        np.cumsum(sizes, out=ptr[1:])
        atom_index = atom_ranges(self.ptr[idx], sizes)
        return Dataset(
            numbers=self.numbers[atom_index],
            positions=self.positions[atom_index],
            ptr=ptr,
            labels={k: v.select(idx, atom_index) for k, v in self.labels.items()},
            fidelity_info=dict(self.fidelity_info),
            info=self.info.iloc[idx].reset_index(drop=True),
            provenance=list(self.provenance),
        )

    def __getitem__(self, indices) -> Dataset:
        if isinstance(indices, (int, np.integer)):
            indices = [indices]
        return self.select(indices)

    def split(self, fractions: Sequence[float], seed: int = 0) -> tuple[Dataset, ...]:
        """Random disjoint parts by configuration (the same for every fidelity), e.g. ``[0.8, 0.1, 0.1]``.

        Fractions that sum to less than 1 leave the rest out; each part keeps all of its labels.
        """
        return tuple(self.select(part) for part in split_indices(len(self), fractions, seed))

    def keep_labels(
        self,
        fidelity: str | Fidelity,
        indices=None,
        properties: Sequence[str] = ("energy",),
    ) -> Dataset:
        """Simulate a label budget: at ``fidelity`` keep only ``properties`` of the configurations
        ``indices`` (positions in this dataset; all when None); mask the rest. Other fidelities and
        the configurations themselves are untouched."""
        name = self.fidelity(fidelity).name
        unknown = set(properties) - set(PROPERTIES)
        if unknown:
            raise ValueError(f"unknown properties {sorted(unknown)}; choose from {PROPERTIES}")
        keep = np.zeros(len(self), bool)
        keep[self._as_index(range(len(self)) if indices is None else indices)] = True
        lab = self.labels[name]
        energy_mask = lab.energy_mask & keep & ("energy" in properties)
        forces_mask = lab.forces_mask & keep & ("forces" in properties)
        energy = np.where(energy_mask, lab.energy, np.nan)
        forces = None
        if lab.forces is not None and forces_mask.any():
            forces = lab.forces.copy()
            forces[~np.repeat(forces_mask, self.n_atoms)] = np.nan
        out = self.select(slice(None))
        out.labels[name] = Labels(energy, energy_mask, forces, forces_mask)
        return out

    def drop_fidelity(self, fidelity: str | Fidelity) -> Dataset:
        """A copy without one fidelity's labels."""
        name = self.fidelity(fidelity).name
        out = self.select(slice(None))
        del out.labels[name]
        return out

    # ----------------------------------------------------------------------------- summaries
    def coverage(self) -> pd.DataFrame:
        """Which labels are present: one row per fidelity (low to high rank) with counts of
        configurations with an energy, with forces, with both, and, per other fidelity, how many
        configurations carry energies at both levels (``"& <other>"`` columns)."""
        return summaries.coverage(self)

    def label_matrix(self) -> pd.DataFrame:
        """``(N, fidelities x {energy, forces})`` booleans: which configuration has which label."""
        return summaries.label_matrix(self)

    def summary(self) -> str:
        """A few lines a person reads: size, elements, fidelities and their coverage, conversions."""
        return summaries.summary(self)

    def __repr__(self) -> str:
        return f"<Dataset: {len(self)} configurations, fidelities {self.fidelity_names}>"

    # ----------------------------------------------------------------------------- ASE
    def to_atoms(self, i: int, fidelity: str | Fidelity | None = None):
        """Configuration ``i`` as an :class:`ase.Atoms` (positions Å).

        Every label is kept in the atoms: ``atoms.info["energy_<fidelity>"]`` (eV) and
        ``atoms.arrays["forces_<fidelity>"]`` (eV/Å), present only where the configuration has them.

        One level's labels are also attached as an ``ase.calculators.singlepoint.SinglePointCalculator``,
        as ``ase.io.read`` attaches a file's energy and forces, so ``atoms.get_potential_energy()`` (eV)
        and ``atoms.get_forces()`` (eV/Å) work: the level named by ``fidelity``, or, when the dataset has
        exactly one fidelity and none is named, that one. With several fidelities and none named the
        atoms carry no calculator (``atoms.calc is None``; which level ``get_potential_energy`` should
        return is the caller's choice): pass ``fidelity=`` to attach one. A label the configuration
        does not have is left out of the calculator, so asking for it raises
        ``PropertyNotImplementedError`` instead of returning a made-up value.
        """
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator

        if fidelity is None and len(self.labels) == 1:
            fidelity = next(iter(self.labels))
        level = self.fidelity(fidelity).name if fidelity is not None else None
        i = int(self._as_index([i])[0])
        lo, hi = self.ptr[i], self.ptr[i + 1]
        atoms = Atoms(numbers=self.numbers[lo:hi], positions=self.positions[lo:hi].astype(np.float64))
        for key, value in self.info.iloc[i].items():
            if not (isinstance(value, float) and np.isnan(value)):
                atoms.info[key] = value.item() if hasattr(value, "item") else value
        atoms.info["configuration"] = i
        for name, lab in self.labels.items():
            if lab.energy_mask[i]:
                atoms.info[f"energy_{name}"] = float(lab.energy[i])
            if lab.forces_mask[i]:
                atoms.arrays[f"forces_{name}"] = lab.forces[lo:hi].astype(np.float64)
        if level is not None:
            lab = self.labels[level]
            results = {}
            if lab.energy_mask[i]:
                results["energy"] = float(lab.energy[i])
            if lab.forces_mask[i]:
                results["forces"] = lab.forces[lo:hi].astype(np.float64)
            atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms

    # ----------------------------------------------------------------------------- files
    def save(self, path) -> None:
        """Write to one HDF5 file (atomically: a crash leaves the old file or none, never half a file)."""
        native_file.write(self, path)

    @classmethod
    def load(cls, path) -> Dataset:
        """Read a file written by :meth:`save`."""
        parts = native_file.read_parts(path)
        with reading(path):
            return Dataset(**parts)

    def atomic_references(self, fidelities: Sequence[str] | None = None) -> pd.DataFrame:
        """Per-element reference energies (eV) fitted by least squares on composition, one column per
        fidelity; see :func:`workbench.data.references.fit_atomic_references`."""
        return fit_atomic_references(self, fidelities)


def split_indices(n: int, fractions: Sequence[float], seed: int = 0) -> list[np.ndarray]:
    """Disjoint random index sets of sizes ``round(f * n)``; the last part takes the rounding rest
    when the fractions sum to 1."""
    fractions = np.asarray(fractions, dtype=float)
    if np.any(fractions < 0) or fractions.sum() > 1 + 1e-9:
        raise ValueError(f"split fractions must be non-negative and sum to at most 1, got {fractions.tolist()}")
    order = np.random.default_rng(seed).permutation(n)
    sizes = np.floor(fractions * n + 0.5).astype(int)
    if abs(fractions.sum() - 1) < 1e-9:
        sizes[-1] = n - sizes[:-1].sum()
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return [np.sort(order[bounds[k] : bounds[k + 1]]) for k in range(len(sizes))]


def concatenate(datasets: Sequence[Dataset]) -> Dataset:
    """Configurations of all datasets, one after the other; fidelities are the union (labels a
    dataset lacks are masked)."""
    datasets = list(datasets)
    if not datasets:
        raise ValueError("nothing to concatenate")
    sizes = [len(d) for d in datasets]
    n = sum(sizes)
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.concatenate([d.n_atoms for d in datasets]), out=ptr[1:])
    fidelity_info: dict[str, Fidelity] = {}
    for d in datasets:
        for k, v in d.fidelity_info.items():
            if k in d.labels:
                fidelity_info.setdefault(k, v)
    ftype = np.result_type(*[d.positions.dtype for d in datasets])
    labels = {}
    for name in fidelity_info:
        energy, emask, fmask, forces = [], [], [], []
        any_forces = any(name in d.labels and d.labels[name].forces is not None for d in datasets)
        for d in datasets:
            lab = d.labels.get(name)
            if lab is None:
                energy.append(np.full(len(d), np.nan))
                emask.append(np.zeros(len(d), bool))
                fmask.append(np.zeros(len(d), bool))
            else:
                energy.append(lab.energy)
                emask.append(lab.energy_mask)
                fmask.append(lab.forces_mask)
            if any_forces:
                have = lab is not None and lab.forces is not None
                forces.append(lab.forces if have else np.full((len(d.numbers), 3), np.nan, ftype))
        labels[name] = Labels(
            np.concatenate(energy),
            np.concatenate(emask),
            np.concatenate(forces) if any_forces else None,
            np.concatenate(fmask),
        )
    info = pd.concat([d.info for d in datasets], ignore_index=True)
    for col in ("formula", "source"):
        if col in info:
            info[col] = info[col].astype("category")
    provenance = [p for d in datasets for p in d.provenance]
    return Dataset(
        numbers=np.concatenate([d.numbers for d in datasets]),
        positions=np.concatenate([d.positions for d in datasets]),
        ptr=ptr,
        labels=labels,
        fidelity_info=fidelity_info,
        info=info,
        provenance=provenance,
    )
