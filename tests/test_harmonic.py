import numpy as np
import pytest
from ase import Atoms, units
from ase.calculators.emt import EMT
from ase.optimize import BFGS

from workbench.harmonic import finite_difference_hessian, normal_modes, to_wavenumbers
from workbench.qm.sampling import default_calculator, normal_mode_sample


def _relaxed_n2(calc):
    atoms = Atoms("N2", positions=[[0, 0, 0], [0, 0, 1.1]])
    atoms.calc = calc
    BFGS(atoms, logfile=None).run(fmax=1e-5, steps=500)
    return atoms


def test_diatomic_gives_one_mode_at_the_textbook_frequency():
    atoms = _relaxed_n2(EMT())
    hess = finite_difference_hessian(atoms, EMT(), delta=1e-4)
    omega2, modes = normal_modes(atoms, hess)
    assert omega2.shape == (1,) and modes.shape == (6, 1)  # 3n - 5 for a linear molecule
    k = hess[2, 2]  # bond force constant, eV/Å^2 (the bond lies along z)
    mu = atoms.get_masses().prod() / atoms.get_masses().sum()  # amu
    assert omega2[0] == pytest.approx(k / mu, rel=1e-6)
    omega = np.sqrt(k / mu * units._e / units._amu) * 1e10  # rad/s
    assert to_wavenumbers(omega2)[0] == pytest.approx(omega / (2 * np.pi * units._c * 100), rel=1e-9)


@pytest.mark.qm
def test_normal_mode_sampling_uses_the_given_calculator():
    ds = normal_mode_sample(Atoms("N2", positions=[[0, 0, 0], [0, 0, 1.1]]), 3, calculator=EMT(), seed=0)
    reported = float(ds.provenance[-1]["note"].rsplit(":", 1)[1].split()[0])

    def wavenumber(calc):
        atoms = _relaxed_n2(calc)
        return to_wavenumbers(normal_modes(atoms, finite_difference_hessian(atoms, calc))[0])[0]

    emt, xtb = wavenumber(EMT()), wavenumber(default_calculator())
    assert abs(emt - xtb) > 50  # the two potentials disagree, so the test can tell them apart
    assert reported == pytest.approx(emt, abs=2.0)
