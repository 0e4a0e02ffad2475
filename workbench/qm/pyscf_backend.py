"""HF, DFT, MP2, CCSD and CCSD(T) single points and gradients through PySCF.

PySCF: Q. Sun et al., J. Chem. Phys. 153, 024109 (2020). Frozen core follows PySCF's chemical
core (``pyscf.data.elements.chemcore``: 1s for C-Ne, [Ne] for Na-Ar, ...). Restricted references
for closed shells, unrestricted for open shells. MP2 gradients use PySCF's conventional (not
density-fitted) MP2 gradient; CCSD(T) gradients solve the (T) Λ equations first.
"""

from __future__ import annotations

import numpy as np
from ase.units import Bohr, Hartree

from .level_of_theory import Level, NotConverged


def build_molecule(numbers, positions, level: Level, charge: int, spin: int):
    """A built ``pyscf.gto.Mole`` for one configuration (positions in Å)."""
    from pyscf import gto

    mol = gto.Mole()
    mol.atom = [(int(z), tuple(float(x) for x in r)) for z, r in zip(numbers, positions, strict=True)]
    mol.unit = "Angstrom"
    mol.basis = level.basis
    mol.charge = int(charge)
    mol.spin = int(spin)
    mol.verbose = 0
    mol.max_memory = float(level.settings["max_memory_mb"])
    mol.build()
    return mol


def mean_field(mol, level: Level):
    """The (not yet run) HF or Kohn-Sham object of ``level`` for ``mol``, restricted for closed shells."""
    from pyscf import dft, scf

    s = level.settings
    restricted = mol.spin == 0
    if level.kind == "dft":
        mf = dft.RKS(mol) if restricted else dft.UKS(mol)
        mf.xc = level.method
        mf.grids.level = int(s["grid_level"])
    else:
        mf = scf.RHF(mol) if restricted else scf.UHF(mol)
    if s["density_fit"]:
        mf = mf.density_fit(auxbasis=s["auxbasis"])
    mf.conv_tol = float(s["conv_tol"])
    mf.max_cycle = int(s["max_cycle"])
    return mf


def _frozen(mol, level: Level) -> int:
    if not level.settings.get("frozen_core"):
        return 0
    from pyscf.data.elements import chemcore

    return int(chemcore(mol))


def run_pyscf(numbers, positions, level: Level, want_forces: bool, charge: int, spin: int):
    """Energy (eV), forces (eV/Å or None) and a convergence record for one configuration (Å).

    Raises :class:`NotConverged` when the SCF, CC or Λ iterations stop short of their threshold.
    """
    mol = build_molecule(numbers, positions, level, charge, spin)
    mf = mean_field(mol, level)
    e_scf = mf.kernel()
    conv = {
        "scf_converged": bool(mf.converged),
        "scf_cycles": int(getattr(mf, "cycles", -1)),
        "scf_conv_tol": mf.conv_tol,
        "energy_scf_eV": float(e_scf) * Hartree,
        "n_basis": int(mol.nao),
    }
    if not mf.converged:
        raise NotConverged(f"SCF did not converge in {mf.max_cycle} cycles (last energy {e_scf:.10f} Eh)", conv)
    kind = level.kind
    gradient = None
    if kind in ("hf", "dft"):
        energy = mf.e_tot
        if want_forces:
            gradient = mf.nuc_grad_method().kernel()
    elif kind == "mp2":
        energy, gradient = _mp2(mf, level, want_forces, conv)
    else:
        energy, gradient = _coupled_cluster(mf, level, want_forces, conv)
    forces = None if gradient is None else -np.asarray(gradient) * (Hartree / Bohr)
    return float(energy) * Hartree, forces, conv


def _mp2(mf, level: Level, want_forces: bool, conv: dict):
    from pyscf import mp

    frozen = _frozen(mf.mol, level)
    conv["frozen_core_orbitals"] = frozen
    pt = mp.MP2(mf, frozen=frozen or None)  # a density-fitted mean field gives DF-MP2 here
    pt.kernel()
    conv["energy_corr_eV"] = float(pt.e_corr) * Hartree
    gradient = pt.nuc_grad_method().kernel() if want_forces else None
    return pt.e_tot, gradient


def _coupled_cluster(mf, level: Level, want_forces: bool, conv: dict):
    from pyscf import cc

    s = level.settings
    frozen = _frozen(mf.mol, level)
    conv["frozen_core_orbitals"] = frozen
    mycc = cc.CCSD(mf, frozen=frozen or None)
    mycc.conv_tol = float(s["cc_conv_tol"])
    mycc.max_cycle = int(s["cc_max_cycle"])
    mycc.kernel()
    conv.update(
        cc_converged=bool(mycc.converged),
        cc_conv_tol=mycc.conv_tol,
        energy_ccsd_corr_eV=float(mycc.e_corr) * Hartree,
    )
    if not mycc.converged:
        raise NotConverged(f"CCSD amplitudes did not converge in {mycc.max_cycle} iterations", conv)
    energy = mycc.e_tot
    if level.kind == "ccsd(t)":
        e_t = mycc.ccsd_t()
        conv["energy_t_eV"] = float(e_t) * Hartree
        energy = energy + e_t
    if not want_forces:
        return energy, None
    if level.kind == "ccsd":
        grad = mycc.nuc_grad_method()
        gradient = grad.kernel()
        lambda_converged = bool(mycc.converged_lambda)
    else:
        from pyscf.cc import ccsd_t_lambda
        from pyscf.grad import ccsd_t as ccsd_t_grad

        eris = mycc.ao2mo()
        lambda_converged, l1, l2 = ccsd_t_lambda.kernel(mycc, eris, mycc.t1, mycc.t2, verbose=0)
        gradient = ccsd_t_grad.Gradients(mycc).kernel(mycc.t1, mycc.t2, l1, l2, eris=eris)
    conv["lambda_converged"] = bool(lambda_converged)
    if not lambda_converged:
        raise NotConverged("CC Λ equations did not converge; no gradient", conv)
    return energy, gradient
