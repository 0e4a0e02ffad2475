"""Stability of molecular dynamics with a model: a short NVE run, its energy drift, and whether bonds break.

A conservative potential integrated with velocity Verlet keeps the total energy up to a bounded oscillation;
a steady drift means the forces are not the gradient of the energy or the time step is too long for the
surface's curvature, and a broken bond at room temperature means a hole in the surface (the model found a
region it was never trained on and fell in). Energies in eV, time in ps, distances in Å.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet

from ._models import predictors
from .coordinates import bond_graph


@dataclass
class MDStability:
    """The record of an NVE run.

    Attributes
    ----------
    time_ps, potential, kinetic, total
        Samples every ``record_every`` steps (ps, eV).
    drift_per_ps
        Slope of a straight line fitted to the total energy (eV/ps); ``drift_per_atom_per_ps`` per atom.
    fluctuation
        Standard deviation of the total energy about that line (eV).
    broken_bonds, formed_bonds
        Atom pairs ``(i, j)`` bonded at the start and not at the end (or the reverse), judged with ASE's natural
        covalent radii times ``bond_factor``.
    first_break_ps
        When a starting bond was first seen broken (None if never).
    max_stretch
        Largest ratio of a starting bond's length to its initial length seen during the run.
    stopped_early
        True when the run stopped on a non-finite energy or an exploding temperature.
    """

    model: str
    time_ps: np.ndarray
    potential: np.ndarray
    kinetic: np.ndarray
    total: np.ndarray
    drift_per_ps: float
    drift_per_atom_per_ps: float
    fluctuation: float
    broken_bonds: list[tuple[int, int]]
    formed_bonds: list[tuple[int, int]]
    first_break_ps: float | None
    max_stretch: float
    stopped_early: bool
    frames: list[Atoms] = field(repr=False, default_factory=list)

    @property
    def bonds_broken(self) -> bool:
        return bool(self.broken_bonds) or self.first_break_ps is not None

    @property
    def stable(self) -> bool:
        """No bond broke or formed and the run finished."""
        return not (self.bonds_broken or self.formed_bonds or self.stopped_early)

    def summary(self) -> dict:
        """The numbers a table row shows."""
        return {
            "model": self.model,
            "duration_ps": float(self.time_ps[-1]) if len(self.time_ps) else 0.0,
            "drift_eV_per_ps": self.drift_per_ps,
            "drift_eV_per_atom_per_ps": self.drift_per_atom_per_ps,
            "fluctuation_eV": self.fluctuation,
            "max_bond_stretch": self.max_stretch,
            "bonds_broken": len(self.broken_bonds),
            "bonds_formed": len(self.formed_bonds),
            "stable": self.stable,
        }


def md_stability(
    model,
    atoms: Atoms,
    fidelity: str | None = None,
    temperature_K: float = 300.0,
    timestep_fs: float = 0.5,
    n_steps: int = 1000,
    record_every: int = 10,
    bond_factor: float = 1.5,
    seed: int = 0,
    device: str | None = None,
) -> MDStability:
    """Run ``n_steps`` of NVE velocity Verlet from ``atoms`` with velocities drawn at ``temperature_K``
    (no net momentum or rotation), using the model's ASE calculator, and judge the run.

    ``model`` is one head (a trained model with ``fidelity``, ``(model, fidelity)``, a calculator). A bond (closer
    than 1.2 times the sum of natural covalent radii at the start) counts as broken once it is longer than
    ``bond_factor`` times that sum; a new bond forms when atoms not within ``bond_factor`` at the start come
    within 1.2 times.
    """
    heads = predictors(model, fidelity, device=device)
    if len(heads) != 1:
        raise ValueError(f"md_stability runs one head; name it with fidelity= (heads: {[p.label for p in heads]})")
    head = heads[0]
    work = atoms.copy()
    work.calc = head.calculator()
    rng = np.random.default_rng(seed)
    thermalize_momenta(work, temperature_K, exact_temperature=True, rng=rng)
    Stationary(work)
    with np.errstate(invalid="ignore", divide="ignore"):  # a linear molecule has no moment about its axis
        ZeroRotation(work)
    start_bonds = np.triu(bond_graph(atoms))
    pairs = np.argwhere(start_bonds)
    r0 = np.linalg.norm(atoms.positions[pairs[:, 1]] - atoms.positions[pairs[:, 0]], axis=1)
    from ase.neighborlist import natural_cutoffs

    radii = np.asarray(natural_cutoffs(atoms))
    limit = bond_factor * (radii[pairs[:, 0]] + radii[pairs[:, 1]])
    dyn = VelocityVerlet(work, timestep=timestep_fs * units.fs)
    record = {"t": [], "pot": [], "kin": [], "frames": []}
    state = {"first_break": None, "max_stretch": 1.0, "stopped": False}
    start_temperature = max(temperature_K, 1.0)

    def observe():
        step = dyn.nsteps
        pos = work.positions
        lengths = np.linalg.norm(pos[pairs[:, 1]] - pos[pairs[:, 0]], axis=1)
        if len(lengths):
            state["max_stretch"] = max(state["max_stretch"], float((lengths / r0).max()))
            if state["first_break"] is None and (lengths > limit).any():
                state["first_break"] = step * timestep_fs / 1000.0
        if step % record_every == 0:
            epot, ekin = work.get_potential_energy(), work.get_kinetic_energy()
            record["t"].append(step * timestep_fs / 1000.0)
            record["pot"].append(epot)
            record["kin"].append(ekin)
            record["frames"].append(Atoms(numbers=work.numbers, positions=pos.copy()))
            temperature = ekin / (1.5 * units.kB * len(work))
            if not np.isfinite(epot) or temperature > 50 * start_temperature:
                state["stopped"] = True

    observe()
    for _ in range(n_steps):
        dyn.run(1)
        observe()
        if state["stopped"]:
            break
    t = np.asarray(record["t"])
    pot, kin = np.asarray(record["pot"]), np.asarray(record["kin"])
    total = pot + kin
    if len(t) > 1 and np.isfinite(total).all():
        slope, intercept = np.polyfit(t, total, 1)
        fluctuation = float(np.std(total - (slope * t + intercept)))
    else:
        slope, fluctuation = float("nan"), float("nan")
    end_bonds = np.triu(bond_graph(work, scale=bond_factor))
    broken = [(int(i), int(j)) for i, j in pairs if not end_bonds[i, j]]
    formed_pairs = np.argwhere(np.triu(bond_graph(work)) & ~np.triu(bond_graph(atoms, scale=bond_factor)))
    formed = [(int(i), int(j)) for i, j in formed_pairs]
    return MDStability(
        model=head.label,
        time_ps=t,
        potential=pot,
        kinetic=kin,
        total=total,
        drift_per_ps=float(slope),
        drift_per_atom_per_ps=float(slope) / len(atoms),
        fluctuation=fluctuation,
        broken_bonds=broken,
        formed_bonds=formed,
        first_break_ps=state["first_break"],
        max_stretch=state["max_stretch"],
        stopped_early=state["stopped"],
        frames=record["frames"],
    )
