"""Every level of theory as an ASE calculator, so ASE's MD, optimizers and Vibrations can use it."""

from __future__ import annotations

from ase.calculators.calculator import CalculationFailed, Calculator, all_changes

from .level_of_theory import Level
from .levels import compute_label


class QMCalculator(Calculator):
    """ASE calculator for a workbench level of theory (energies in eV, forces in eV/Å).

    >>> atoms.calc = QMCalculator("mp2/cc-pvdz")            # or QMCalculator("gfn2-xtb")
    >>> atoms.get_potential_energy()

    A calculation that does not converge raises ``ase.calculators.calculator.CalculationFailed``
    with the reason. :attr:`last_label` holds the full record of the last calculation (program,
    version, settings, convergence, wall time).
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, level: str | Level = "gfn2-xtb", **settings):
        super().__init__()
        self.level = Level(level, **settings)
        self.last_label: dict | None = None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        props = ("energy", "forces") if "forces" in properties else ("energy",)
        charge = int(round(self.atoms.get_initial_charges().sum())) if self.atoms.has("initial_charges") else None
        rec = compute_label(self.atoms.numbers, self.atoms.positions, self.level, props, charge=charge)
        self.last_label = rec
        if rec["status"] != "done":
            raise CalculationFailed(f"{self.level.name}: {rec['error']}")
        self.results = {"energy": rec["energy"], "free_energy": rec["energy"]}
        if rec["forces"] is not None:
            self.results["forces"] = rec["forces"]

    def __repr__(self) -> str:
        return f"QMCalculator({self.level!r})"
