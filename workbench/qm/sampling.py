"""Configurations to label: Langevin MD, normal-mode sampling around a minimum, random displacements.

Each sampler takes an ``ase.Atoms`` (Å) and returns a :class:`~workbench.data.Dataset` of
geometries (no labels unless asked), with an ``info`` table saying how each was made. Any ASE
calculator drives the MD and the Hessian; GFN2-xTB (tblite) is the default.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ase import Atoms, units

from ..data.dataset import Dataset
from ..harmonic import finite_difference_hessian, normal_modes
from ..harmonic import to_wavenumbers as wavenumbers


def default_calculator():
    """GFN2-xTB through tblite's own ASE calculator (it reuses the previous wavefunction, which
    makes MD steps ~30% faster than a fresh single point)."""
    from tblite.ase import TBLite

    return TBLite(method="GFN2-xTB", verbosity=0)


def _dataset(frames: list[dict], source: str, label_as: str | None) -> Dataset:
    records = []
    for f in frames:
        rec = {"numbers": f["numbers"], "positions": f["positions"], "info": {"source": source, **f["info"]}}
        if label_as is not None:
            rec["energy"] = {label_as: f["energy"]}
            rec["forces"] = {label_as: f["forces"]}
        records.append(rec)
    return Dataset.from_configurations(records)


def langevin_md(
    atoms: Atoms,
    n_samples: int,
    temperature_K: float = 500.0,
    calculator=None,
    timestep_fs: float = 0.5,
    interval: int = 20,
    equilibration_steps: int = 1000,
    friction_per_fs: float = 0.01,
    seed: int = 0,
    label_as: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """Sample ``n_samples`` configurations every ``interval`` steps of Langevin MD at ``temperature_K``.

    Velocities start from a Maxwell-Boltzmann distribution (seeded), the first
    ``equilibration_steps`` are discarded, and each kept geometry is shifted to put its centre of
    mass at the origin (the thermostat's random kicks make the molecule drift). ``timestep_fs`` in
    fs, ``friction_per_fs`` in 1/fs. With ``label_as`` (a fidelity name), the MD calculator's
    energies (eV) and forces (eV/Å) at the kept frames become labels of that fidelity.
    ``info`` records ``step``, ``time_fs`` and the instantaneous ``temperature_K``.
    """
    from ase.md import velocitydistribution as vd
    from ase.md.langevin import Langevin

    if n_samples < 1 or interval < 1:
        raise ValueError(f"need n_samples >= 1 and interval >= 1, got {n_samples} and {interval}")
    rng = np.random.default_rng(seed)
    atoms = atoms.copy()
    atoms.calc = calculator if calculator is not None else default_calculator()
    vd.thermalize_momenta(atoms, temperature_K, rng=rng)
    vd.Stationary(atoms)
    with np.errstate(divide="ignore", invalid="ignore"):  # a linear molecule has a zero moment of inertia
        vd.ZeroRotation(atoms)
    dyn = Langevin(
        atoms,
        timestep=timestep_fs * units.fs,
        temperature_K=temperature_K,
        friction=friction_per_fs / units.fs,
        fixcm=False,
        rng=rng,
    )
    if equilibration_steps:
        dyn.run(equilibration_steps)
    frames = []
    for k in range(n_samples):
        dyn.run(interval)
        step = equilibration_steps + (k + 1) * interval
        frame = {
            "numbers": atoms.numbers.copy(),
            "positions": atoms.positions - atoms.get_center_of_mass(),
            "info": {"step": step, "time_fs": step * timestep_fs, "temperature_K": atoms.get_temperature()},
        }
        if label_as is not None:
            frame["energy"] = atoms.get_potential_energy()
            frame["forces"] = atoms.get_forces()
        frames.append(frame)
        if progress is not None:
            progress(k + 1, n_samples)
    return _dataset(frames, f"langevin md {temperature_K:g} K", label_as)


def hessian(atoms: Atoms, delta: float = 0.005) -> np.ndarray:
    """``(3n, 3n)`` Cartesian Hessian in eV/Å² by central differences of the forces (step ``delta`` Å)
    of the calculator attached to ``atoms`` (GFN2-xTB when none is)."""
    return finite_difference_hessian(atoms, atoms.calc or default_calculator(), delta)


def normal_mode_sample(
    atoms: Atoms,
    n_samples: int,
    temperature_K: float = 300.0,
    calculator=None,
    optimize: bool = True,
    fmax: float = 0.005,
    min_wavenumber: float = 50.0,
    seed: int = 0,
) -> Dataset:
    """Configurations around a minimum from the classical harmonic Boltzmann distribution.

    Each normal mode k gets a Gaussian amplitude with variance kT/ω_k² (mass-weighted), the idea of
    normal-mode sampling in J. S. Smith, O. Isayev, A. E. Roitberg, Chem. Sci. 8, 3192 (2017).
    With ``optimize`` the geometry is first relaxed (BFGS to ``fmax`` eV/Å). Modes softer than
    ``min_wavenumber`` cm⁻¹ (and imaginary ones) are sampled as if they had that wavenumber, so a
    flat mode does not fling atoms apart. ``info`` records each sample's harmonic energy (eV).
    """
    from ase.optimize import BFGS

    rng = np.random.default_rng(seed)
    atoms = atoms.copy()
    atoms.calc = calculator if calculator is not None else default_calculator()
    if optimize:
        BFGS(atoms, logfile=None).run(fmax=fmax, steps=500)
    w2, modes = normal_modes(atoms, hessian(atoms))
    w2_min = (min_wavenumber * units.invcm / (units._hbar * 1e10) * units._e) ** 2 / (units._e / units._amu)
    w2_used = np.maximum(w2, w2_min)
    kt = units.kB * temperature_K
    inv_sq = np.repeat(1.0 / np.sqrt(atoms.get_masses()), 3)
    frames = []
    for k in range(n_samples):
        q = rng.normal(size=len(w2_used)) * np.sqrt(kt / w2_used)
        dx = (inv_sq * (modes @ q)).reshape(-1, 3)
        frames.append(
            {
                "numbers": atoms.numbers.copy(),
                "positions": atoms.positions + dx,
                "info": {"sample": k, "harmonic_energy_eV": float(0.5 * np.sum(w2_used * q**2))},
            }
        )
    ds = _dataset(frames, f"normal modes {temperature_K:g} K", None)
    ds.provenance.append(
        {
            "note": f"normal-mode sampling at {temperature_K:g} K; wavenumbers (cm^-1): "
            + " ".join(f"{v:.0f}" for v in wavenumbers(w2))
        }
    )
    return ds


def random_displacements(atoms: Atoms, n_samples: int, sigma: float = 0.05, seed: int = 0) -> Dataset:
    """Configurations with every Cartesian coordinate displaced by Gaussian noise of ``sigma`` Å."""
    rng = np.random.default_rng(seed)
    frames = [
        {
            "numbers": atoms.numbers.copy(),
            "positions": atoms.positions + rng.normal(scale=sigma, size=atoms.positions.shape),
            "info": {"sample": k, "sigma_A": sigma},
        }
        for k in range(n_samples)
    ]
    return _dataset(frames, "random displacements", None)
