"""Settings of one training run, stored as given (scikit-learn style) and saved as JSON with every model.

Units: learning rates per optimizer step; times in seconds; loss weights are dimensionless (each loss
term is divided by the spread of its labels, see :mod:`workbench.training.loss`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

OPTIMIZERS = ("adam", "adamw")


@dataclass
class TrainSettings:
    """How to train: optimizer, schedule, stopping, loss weights, precision and device.

    Parameters
    ----------
    lr
        Learning rate of Adam/AdamW.
    optimizer
        ``"adam"`` or ``"adamw"``.
    weight_decay
        Weight decay (decoupled for AdamW).
    batch_size
        Configurations per optimizer step (over all processes under DistributedDataParallel).
    max_epochs
        Upper bound on epochs. An epoch is one pass over the training set, or several when one pass
        has fewer than ``min_steps`` batches, so that patience means a similar amount of training for
        100 configurations and for 100 000.
    min_steps
        Fewest optimizer steps in an epoch.
    patience
        Early stopping: stop after this many epochs without improvement of ``monitor``. Give the
        high-level head time: its energies settle long before its gradients do (50-100 epochs).
    monitor
        What early stopping and the learning-rate schedule watch: a history column such as
        ``"val_loss"`` (default), ``"val_forces_mae[gfn2-xtb]"``, or ``{column: weight}`` for a
        weighted sum of columns (e.g. the high head's energy error plus the low head's force error).
    min_improvement
        Relative improvement of ``monitor`` that counts as better (0.0: any decrease).
    lr_patience, lr_factor, min_lr
        ReduceLROnPlateau on ``monitor``: after ``lr_patience`` epochs without improvement multiply
        the learning rate by ``lr_factor``, never below ``min_lr``.
    clip_norm
        Clip the global gradient norm to this value (None: no clipping).
    ema_decay
        Exponential moving average of the weights (warmed up over the first steps); validation and the
        returned model use the averaged weights. None: off. With forces dominating the loss, Adam moves
        the energy's constant offset at full step size and validation energies jump from epoch to
        epoch; the average smooths that out (single E+F on ethanol: energy MAE 31 vs 37 meV).
    energy_weight, force_weight
        Weights of the energy and force terms of every fidelity. Both terms are mean squared errors, the
        energy per atom (eV/atom)^2 and the forces per component (eV/Å)^2. 100:1 for forces gave
        ethanol models with 1.5x smaller force errors and smaller energy errors than 10:1
        (``benchmarks/multifidelity.py``).
    weights
        Per-fidelity overrides ``{fidelity: {"energy": w, "forces": w}}``.
    dtype
        ``"float32"`` (default) or ``"float64"``.
    device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    seed
        Fixes initialisation, the validation split when none is given, and the batch order.
    max_time
        Wall-clock budget in seconds (None: none); the run stops after the epoch that passes it.
    explode_factor
        An epoch whose training loss exceeds this multiple of the stage's best one so far, and its
        first epoch's, stops the run as diverged (a NaN or infinite loss always does).
    layer_lr_decay
        Discriminative learning rates: each layer group from the output back gets this factor more
        (1.0: one learning rate for all).
    freeze
        Parameter-name prefixes to keep fixed (e.g. ``["blocks.0"]``).
    train_references
        Let the optimizer move the fitted per-element reference energies (default: keep the fit).
    keep_start
        The starting weights compete for the best: they are scored on the validation set before the first
        epoch, and a stage that never beats them ends with them. For training further from trained weights
        (the improve loop's rounds), where a few new labels can pull a good model away from what it knew.
    """

    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    batch_size: int = 32
    max_epochs: int = 500
    min_steps: int = 16
    patience: int = 50
    monitor: str | dict = "val_loss"
    min_improvement: float = 0.0
    lr_patience: int = 25
    lr_factor: float = 0.5
    min_lr: float = 1e-6
    clip_norm: float | None = 10.0
    ema_decay: float | None = 0.99
    energy_weight: float = 1.0
    force_weight: float = 100.0
    weights: dict = field(default_factory=dict)
    dtype: str = "float32"
    device: str = "auto"
    seed: int = 0
    max_time: float | None = None
    explode_factor: float = 1e3
    layer_lr_decay: float = 1.0
    freeze: list = field(default_factory=list)
    train_references: bool = False
    keep_start: bool = False

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        for name in ("lr", "batch_size", "max_epochs", "lr_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.patience < 1:
            raise ValueError(f"patience must be at least 1 epoch, got {self.patience}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie between 0 and 1, got {self.ema_decay}")
        self.freeze = list(self.freeze)

    @property
    def torch_dtype(self) -> torch.dtype:
        return torch.float64 if self.dtype == "float64" else torch.float32

    def torch_device(self) -> torch.device:
        """The device named by ``device`` (``"auto"``: CUDA when present, else CPU)."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def loss_weight(self, fidelity: str, prop: str) -> float:
        """Weight of ``prop`` (``"energy"`` or ``"forces"``) of ``fidelity`` in the loss."""
        default = self.energy_weight if prop == "energy" else self.force_weight
        return float(self.weights.get(fidelity, {}).get(prop, default))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> TrainSettings:
        """A copy with some settings changed (unknown names raise TypeError naming them)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"unknown training settings {sorted(unknown)}; known: {self.names()}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict) -> TrainSettings:
        unknown = set(values) - set(cls.names())
        if unknown:
            raise TypeError(f"unknown training settings {sorted(unknown)}; known: {cls.names()}")
        return cls(**values)
