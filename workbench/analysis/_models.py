"""One view of every kind of model the analyses accept: energies and forces for configurations at one fidelity.

An analysis may be handed

- a trained model (an object with ``.calculator(fidelity=...)`` that wraps a torch module as ``.module`` or
  ``.model``, such as :class:`workbench.training.TrainedModel`),
- a bare :class:`~workbench.models.base.AtomisticModel` (every head, or the one named by ``fidelity``),
- ``(model, fidelity)`` to pick one head (``fidelity`` a name in any spelling or a :class:`~workbench.data.Fidelity`;
  for a calculator it says which level the calculator stands for),
- any ASE calculator (an analytic potential, a QM level, another code's model),
- a level-of-theory name such as ``"gfn2-xtb"`` (the QM engine's calculator for that level),
- a ``{name: model}`` dict to choose the names shown in tables and figures.

:func:`predictors` turns each into :class:`Predictor` objects, one per head, that all answer the same three
questions: energies and forces of a list of ``ase.Atoms`` or of a :class:`~workbench.data.Dataset`, an ASE
calculator, and a Hessian. Units: eV, Å, eV/Å, eV/Å^2.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from ase.calculators.calculator import Calculator

from ..data.fidelity import Fidelity, canonical_fidelities, canonical_name
from ..harmonic import finite_difference_hessian

#: Configurations per forward pass when a torch model evaluates a dataset.
BATCH_SIZE = 64

#: Where a head is looked for, in the error for one the model does not have.
_HEADS = "among the model's heads"


def _torch_module(model) -> torch.nn.Module | None:
    """The :class:`AtomisticModel` inside ``model`` (itself, ``.module`` or ``.model``), or None."""
    if isinstance(model, torch.nn.Module) and hasattr(model, "fidelities"):
        return model
    for attr in ("module", "model"):
        inner = getattr(model, attr, None)
        if isinstance(inner, torch.nn.Module) and hasattr(inner, "fidelities"):
            return inner
    return None


def _module_dtype(module: torch.nn.Module) -> torch.dtype:
    for name, p in module.named_parameters():
        if p.dtype.is_floating_point and not name.endswith("references"):
            return p.dtype
    return torch.float32


@dataclass
class Predictor:
    """One head of one model: energies (eV) and forces (eV/Å) at one fidelity.

    Attributes
    ----------
    name
        The model's name in tables and figures.
    fidelity
        The head (level of theory) this predictor stands for; None for a calculator of unknown level.
    module
        The torch model when there is one (batched evaluation, autograd Hessians), else None.
    make_calculator
        Builds a fresh ASE calculator for this head.
    n_parameters
        Trainable parameters of the model (None for a calculator).
    n_heads
        How many heads the model has (1 for a calculator).
    """

    name: str
    fidelity: str | None
    module: torch.nn.Module | None = None
    make_calculator: Callable[[], Calculator] | None = None
    n_parameters: int | None = None
    n_heads: int = 1
    #: Torch device to evaluate on; None keeps the model where it is.
    device: str | None = None
    #: Batched evaluation ``(numbers, positions, ptr) -> (energies, forces)`` for models that are more than a
    #: torch module (a Δ-learning model adds its base level).
    batch_predict: Callable | None = field(default=None, repr=False)
    _calc: Calculator | None = field(default=None, repr=False)

    @property
    def torch_device(self) -> torch.device:
        """Where the model is evaluated: ``device`` if given, else where its parameters already are."""
        if self.device is not None:
            return torch.device(
                "cuda"
                if self.device == "auto" and torch.cuda.is_available()
                else "cpu"
                if self.device == "auto"
                else self.device
            )
        param = next(self.module.parameters(), None) if self.module is not None else None
        return param.device if param is not None else torch.device("cpu")

    @property
    def label(self) -> str:
        """``name`` for a single-head model, ``name · fidelity`` for one head of several."""
        return f"{self.name} · {self.fidelity}" if self.n_heads > 1 and self.fidelity else self.name

    def calculator(self) -> Calculator:
        """An ASE calculator for this head (one per predictor, reused)."""
        if self._calc is None:
            self._calc = self.make_calculator()
        return self._calc

    # ----------------------------------------------------------------------------- evaluation
    def _module_pass(self, numbers, positions, ptr) -> tuple[np.ndarray, np.ndarray]:
        from ..models.base import energy_and_forces
        from ..models.batch import Batch

        dtype = _module_dtype(self.module)
        device = self.torch_device
        energies, forces = [], []
        n = len(ptr) - 1
        self.module.to(device).eval()
        for lo in range(0, n, BATCH_SIZE):
            hi = min(lo + BATCH_SIZE, n)
            a, b = ptr[lo], ptr[hi]
            batch = Batch.from_arrays(numbers[a:b], positions[a:b], ptr[lo : hi + 1] - a, device, dtype)
            e, f = energy_and_forces(self.module, batch, self.fidelity)
            energies.append(e.detach().cpu().numpy().astype(np.float64))
            forces.append(f.detach().cpu().numpy().astype(np.float64))
        if not energies:
            return np.zeros(0), np.zeros((0, 3))
        return np.concatenate(energies), np.concatenate(forces)

    def evaluate_arrays(self, numbers, positions, ptr) -> tuple[np.ndarray, np.ndarray]:
        """Energies ``(N,)`` eV and forces ``(A, 3)`` eV/Å of flat ragged configurations (positions Å)."""
        numbers, positions, ptr = np.asarray(numbers), np.asarray(positions, dtype=np.float64), np.asarray(ptr)
        if self.batch_predict is not None:
            energies, forces = self.batch_predict(numbers, positions, ptr)
            return np.asarray(energies, dtype=np.float64), np.asarray(forces, dtype=np.float64)
        if self.module is not None:
            return self._module_pass(numbers, positions, ptr)
        from ase import Atoms

        calc = self.calculator()
        energies = np.zeros(len(ptr) - 1)
        forces = np.zeros((len(numbers), 3))
        for c in range(len(ptr) - 1):
            lo, hi = ptr[c], ptr[c + 1]
            atoms = Atoms(numbers=numbers[lo:hi], positions=positions[lo:hi])
            atoms.calc = calc
            energies[c] = atoms.get_potential_energy()
            forces[lo:hi] = atoms.get_forces()
        return energies, forces

    def evaluate_atoms(self, atoms_list: Sequence) -> tuple[np.ndarray, list[np.ndarray]]:
        """Energies ``(N,)`` eV and a list of ``(n_i, 3)`` force arrays (eV/Å) of ``ase.Atoms``."""
        atoms_list = [atoms_list] if hasattr(atoms_list, "get_positions") else list(atoms_list)
        if not atoms_list:
            return np.zeros(0), []
        ptr = np.concatenate([[0], np.cumsum([len(a) for a in atoms_list])])
        numbers = np.concatenate([a.numbers for a in atoms_list])
        positions = np.concatenate([a.positions for a in atoms_list])
        energies, forces = self.evaluate_arrays(numbers, positions, ptr)
        return energies, [forces[ptr[c] : ptr[c + 1]] for c in range(len(atoms_list))]

    def evaluate_dataset(self, ds) -> tuple[np.ndarray, np.ndarray, float]:
        """Energies ``(N,)`` eV, forces ``(A, 3)`` eV/Å of every configuration, and the wall time (s)."""
        start = time.perf_counter()
        energies, forces = self.evaluate_arrays(ds.numbers, ds.positions, ds.ptr)
        return energies, forces, time.perf_counter() - start

    def hessian(self, atoms, delta: float = 0.005) -> np.ndarray:
        """``(3n, 3n)`` Hessian in eV/Å^2: exact by autograd for a torch model, else central differences
        of the calculator's forces with step ``delta`` Å."""
        if self.module is not None and self.batch_predict is None:
            from ..models.ase_calculator import hessian

            return np.asarray(hessian(self.module, atoms, self.fidelity, device=self.torch_device))
        return finite_difference_hessian(atoms, self.calculator(), delta)


def _trained(model, module, name: str, fidelity, device: str | None) -> list[Predictor]:
    """The heads of a :class:`~workbench.training.TrainedModel` (those it keeps trained). A model that adds a base
    level (Δ-learning) is evaluated through its own ``predict``, which includes the base."""
    heads = kept = list(getattr(model, "fidelities", None) or module.fidelities)
    if fidelity is not None:
        heads = list(canonical_fidelities(fidelity, module.fidelities, _HEADS))
    n_params = getattr(model, "n_parameters", None)
    has_base = getattr(model, "base", None) is not None
    out = []
    for head in heads:

        def batch_predict(numbers, positions, ptr, head=head):
            from ..data.dataset import Dataset

            ds = Dataset(numbers=numbers, positions=positions, ptr=ptr)
            pred = model.predict(ds, fidelity=head, device=device or _where(module))
            return pred["energy"], pred["forces"]

        out.append(
            Predictor(
                name,
                head,
                module,
                lambda head=head: model.calculator(fidelity=head, device=device or _where(module)),
                int(n_params) if n_params is not None else None,
                len(kept),
                device,
                batch_predict if has_base else None,
            )
        )
    return out


def _unique(name: str, taken: set[str]) -> str:
    out, k = name, 2
    while out in taken:
        out, k = f"{name} #{k}", k + 1
    taken.add(out)
    return out


def _default_name(model) -> str:
    for attr in ("name",):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    module = _torch_module(model)
    if module is not None:
        return getattr(module, "family", "") or type(module).__name__
    level = getattr(model, "level", None)
    if level is not None and hasattr(level, "name"):
        return level.name
    return type(model).__name__


def _where(module: torch.nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def is_pair(obj) -> bool:
    """Whether ``obj`` is ``(model, fidelity)``: a 2-tuple whose second item is a fidelity name, a
    :class:`~workbench.data.Fidelity` or None (not a tuple of two models)."""
    return isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[1], (str, Fidelity, type(None)))


def _resolve_one(model, name: str, fidelity, device: str | None) -> list[Predictor]:
    if isinstance(model, Predictor):
        return [model]
    if is_pair(model):
        return _resolve_one(model[0], name, model[1], device)
    if isinstance(model, (str, Fidelity)):
        from ..qm.qm_calculator import QMCalculator

        level = canonical_name(model)
        return [Predictor(name, level, make_calculator=lambda: QMCalculator(level))]
    module = _torch_module(model)
    if module is not None and model is not module and hasattr(model, "predict") and hasattr(model, "calculator"):
        return _trained(model, module, name, fidelity, device)
    if module is not None:
        heads = list(module.fidelities)
        if fidelity is not None:
            heads = list(canonical_fidelities(fidelity, module.fidelities, _HEADS))
        n_params = int(sum(p.numel() for p in module.parameters() if p.requires_grad))
        out = []
        for head in heads:

            def make(head=head):
                if hasattr(model, "calculator") and callable(model.calculator) and model is not module:
                    return model.calculator(fidelity=head)
                from ..models.ase_calculator import WorkbenchCalculator

                return WorkbenchCalculator(module, fidelity=head, device=device or _where(module))

            out.append(Predictor(name, head, module, make, n_params, len(module.fidelities), device))
        return out
    if isinstance(model, Calculator):
        level = getattr(model, "level", None)
        # A calculator is one level: a single fidelity given with it names that level.
        chosen = list(canonical_fidelities(fidelity) or [])
        fid = chosen[0] if len(chosen) == 1 else None
        if fid is None and level is not None and hasattr(level, "name"):
            fid = level.name
        return [Predictor(name, fid, make_calculator=lambda: model)]
    if hasattr(model, "calculator") and callable(model.calculator):
        heads = canonical_fidelities(fidelity) or list(getattr(model, "fidelities", None) or [None])
        return [
            Predictor(name, h, make_calculator=lambda h=h: model.calculator(fidelity=h), n_heads=len(heads))
            for h in heads
        ]
    raise TypeError(
        f"cannot evaluate a {type(model).__name__}: expected a trained model, a workbench model, "
        "(model, fidelity), an ASE calculator or a level-of-theory name"
    )


def predictors(
    models, fidelity: str | Fidelity | Sequence[str | Fidelity] | None = None, device: str | None = None
) -> list[Predictor]:
    """Every head of every model as a :class:`Predictor`.

    ``models`` is one model, a list of them, or a ``{name: model}`` dict (see the module docstring for what a
    model may be). ``fidelity`` (a name, a :class:`~workbench.data.Fidelity` or a list of them) picks heads of torch
    models (all heads when None); ``device`` (``"cpu"``, ``"cuda"``,
    ``"auto"``) where torch models are evaluated (None: where they already are). Names repeat-proof: a second
    model of the same family is called ``"hipnn #2"``.
    """
    if isinstance(models, Mapping):
        items = list(models.items())
    elif isinstance(models, (list, tuple)) and not is_pair(models):
        items = [(None, m) for m in models]
    else:
        items = [(None, models)]
    taken: set[str] = set()
    out: list[Predictor] = []
    for given, model in items:
        if isinstance(model, Predictor):
            out.append(model)
            taken.add(model.name)
            continue
        inner = model[0] if is_pair(model) else model
        name = _unique(str(given) if given is not None else _default_name(inner), taken)
        out.extend(_resolve_one(model, name, fidelity, device))
    if not out:
        raise ValueError("no models given")
    return out
