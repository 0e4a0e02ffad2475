"""ASE calculator over any workbench model and fidelity head, and exact Hessians by autograd.

Energies in eV, forces in eV/Å, Hessians in eV/Å^2. The calculator follows ASE's protocol
(``implemented_properties`` and ``calculate``), so ASE's molecular dynamics, optimizers and
:class:`ase.vibrations.Vibrations` work with it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from .base import energy_and_forces
from .batch import Batch


def _module(model) -> torch.nn.Module:
    """The torch module of a model or of an object that wraps one (``.module`` or ``.model``)."""
    if isinstance(model, torch.nn.Module):
        return model
    for attr in ("module", "model"):
        inner = getattr(model, attr, None)
        if isinstance(inner, torch.nn.Module):
            return inner
    raise TypeError(f"expected a workbench model (a torch module), got {type(model).__name__}")


def _dtype(module: torch.nn.Module) -> torch.dtype:
    # Reference energies are float64 in every model; the network's own weights set the working precision.
    for name, p in module.named_parameters():
        if p.dtype.is_floating_point and not name.endswith("references"):
            return p.dtype
    return torch.float32


def _check_molecule(atoms) -> None:
    if np.any(atoms.pbc):
        raise NotImplementedError("periodic cells are not supported yet: the models treat configurations as molecules")


class WorkbenchCalculator(Calculator):
    """ASE calculator for one fidelity head of a workbench model.

    Parameters
    ----------
    model
        An :class:`~workbench.models.base.AtomisticModel` (or an object wrapping one as ``.module``).
    fidelity
        Which head to evaluate; may be omitted when the model has a single head.
    device
        Torch device to evaluate on (``"cpu"``, ``"cuda"``, ``"auto"``).
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, model, fidelity: str | None = None, device: str | torch.device = "cpu", **kwargs):
        super().__init__(**kwargs)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = _module(model).to(self.device).eval()
        self.fidelity = self.model.fidelities[self.model.fidelity_index(fidelity)]
        self.dtype = _dtype(self.model)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        _check_molecule(self.atoms)
        batch = Batch.from_atoms(self.atoms, device=self.device, dtype=self.dtype)
        energy, forces = energy_and_forces(self.model, batch, self.fidelity)
        e = float(energy.detach()[0])
        self.results = {
            "energy": e,
            "free_energy": e,
            "forces": forces.detach().to("cpu", torch.float64).numpy(),
        }


def hessian(
    model, atoms, fidelity: str | None = None, device: str | torch.device = "cpu"
) -> np.ndarray | list[np.ndarray]:
    """Exact Hessian ``d^2 E / dr dr`` (eV/Å^2), ``(3n, 3n)`` in ASE's atom-major order, by autograd.

    ``atoms`` may be a list of :class:`ase.Atoms`; then all Hessians come from one batched pass
    (``3 * n_max`` Hessian-vector products for the whole list) and a list is returned.
    """
    module = _module(model).to(device)
    single = hasattr(atoms, "get_positions")
    atoms_list: Sequence = [atoms] if single else list(atoms)
    for a in atoms_list:
        _check_molecule(a)
    name = module.fidelities[module.fidelity_index(fidelity)]
    batch = Batch.from_atoms(atoms_list, device=device, dtype=_dtype(module)).requires_grad()
    energy = module(batch, [name])[name]
    (grad,) = torch.autograd.grad(energy.sum(), batch.positions, create_graph=True)
    # Configurations are independent, so row r of every Hessian comes from one vector-Hessian product:
    # the probe is 1 on coordinate r of every configuration at once.
    n_max = batch.max_atoms
    local = torch.arange(len(batch.numbers), device=device) - batch.ptr[batch.configuration]
    probes = torch.zeros(3 * n_max, len(batch.numbers), 3, dtype=grad.dtype, device=device)
    rows = torch.arange(3 * n_max, device=device)
    for k in range(3):
        probes[local * 3 + k, torch.arange(len(local), device=device), k] = 1.0
    try:
        (rows_out,) = torch.autograd.grad(grad, batch.positions, grad_outputs=probes, is_grads_batched=True)
    except RuntimeError:  # an operation without a batching rule: one product per row instead
        rows_out = torch.stack(
            [torch.autograd.grad(grad, batch.positions, grad_outputs=p, retain_graph=True)[0] for p in probes[rows]]
        )
    rows_out = rows_out.detach().to("cpu", torch.float64).numpy()
    ptr = batch.ptr.cpu().numpy()
    out = []
    for c in range(batch.n_configurations):
        n = ptr[c + 1] - ptr[c]
        block = rows_out[: 3 * n, ptr[c] : ptr[c + 1]].reshape(3 * n, 3 * n)
        out.append(0.5 * (block + block.T))  # symmetric to round-off already; make it exactly so
    return out[0] if single else out
