"""What the Training panel offers: strategies, devices, model widths, and the levels of theory with their labels
and loss weights."""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from ..training.settings import TrainSettings
from .common import COMPACT, fast_mode

#: Strategy shown in the panel -> recipe of :func:`workbench.train`.
STRATEGIES = {
    "single": "single",
    "multi-fidelity": "multifidelity",
    "Δ-learning": "delta",
    "transfer": "transfer",
    "meta": "meta",
    "learning curve": "learning_curve",
}
HINTS = {
    "single": "one level (the target) on its own labels",
    "multifidelity": "every chosen level at once on a shared trunk (each level the one below + a correction), "
    "a masked loss, then fine-tuning on the target",
    "delta": "learn (target − one lower level) and add it to that level",
    "transfer": "pre-train on the lower levels, fine-tune on the target at a 10× smaller learning rate",
    "meta": "Reptile over the levels as tasks, then fine-tune on the target",
    "learning_curve": "the inner strategy at several numbers of target labels",
}
#: Settings that make the model wider, per family (its first matching default).
WIDTH_KEYS = ("n_features", "hidden")


def default_settings() -> dict:
    """Values the panel opens with (tiny in fast mode, see :func:`~workbench.ui.common.fast_mode`)."""
    if fast_mode():
        return {"max_epochs": 4, "lr": 1e-3, "patience": 10, "seed": 0, "width": 16, "batch_size": 32}
    # 5e-3: what Start gives on the built-in ethanol, CCSD(T) energies 29 ± 3 meV at 5e-3 against 50 at 1e-3
    # (benchmarks/start_button.py; docs/multifidelity-defaults.md)
    return {"max_epochs": 200, "lr": 5e-3, "patience": 30, "seed": 0, "width": 32, "batch_size": 32}


def devices() -> list[tuple[str, str]]:
    """``(label, device)`` for the CPU and every CUDA GPU torch finds."""
    import torch

    out = [("CPU", "cpu")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            out.append((f"GPU {i}: {torch.cuda.get_device_name(i)}", f"cuda:{i}"))
    return out


def width_setting(family: str, width: int, defaults: dict) -> dict:
    """The family settings that give a model of ``width`` (features per atom or hidden units); {} when the family
    has no width (the linear model)."""
    for key in WIDTH_KEYS:
        if key in defaults:
            value = defaults[key]
            return {key: [int(width)] * len(value) if isinstance(value, list) else int(width)}
    return {}


def format_seconds(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


class FidelityRow:
    """The widgets of one level of theory: use it, which labels, their loss weights."""

    def __init__(self, name: str, n_energy: int, n_forces: int):
        self.name = name
        self.use = widgets.Checkbox(value=True, indent=False, layout=widgets.Layout(width="24px"))
        self.energy = widgets.Checkbox(value=n_energy > 0, disabled=n_energy == 0, indent=False)
        self.forces = widgets.Checkbox(value=n_forces > 0, disabled=n_forces == 0, indent=False)
        for box in (self.energy, self.forces):
            box.layout.width = "24px"
        defaults = TrainSettings()
        self.energy_weight = widgets.BoundedFloatText(defaults.energy_weight, min=0.0, max=1e4)
        self.force_weight = widgets.BoundedFloatText(defaults.force_weight, min=0.0, max=1e4)
        for box in (self.energy_weight, self.force_weight):
            box.layout.width = "70px"
        self.counts = widgets.HTML(f'<span class="wb-muted">{n_energy:,} E · {n_forces:,} F</span>')
        self.label = widgets.HTML(f"<b>{html.escape(name)}</b>")

    @property
    def properties(self) -> tuple[str, ...]:
        return tuple(p for p, box in (("energy", self.energy), ("forces", self.forces)) if box.value)

    def cells(self) -> list[widgets.Widget]:
        return [self.use, self.label, self.energy, self.energy_weight, self.forces, self.force_weight, self.counts]


class LevelChooser(widgets.VBox):
    """One row per level of theory of a dataset (use it, energies, forces, their loss weights, how many labels
    it has) and the target level: the highest-ranked level in use, unless chosen otherwise."""

    def __init__(self):
        self.rows: dict[str, FidelityRow] = {}
        self.grid = widgets.GridBox(
            layout=widgets.Layout(grid_template_columns="28px 230px 28px 80px 28px 80px auto", grid_gap="2px 6px")
        )
        self.grid.add_class("wb-fidelities")
        self.target = widgets.Dropdown(description="Target level", style=COMPACT, layout=widgets.Layout(width="330px"))
        self._dataset = None
        super().__init__([self.grid, self.target])

    def show(self, ds) -> None:
        """Rows for the levels of ``ds`` (all in use, every label they have ticked)."""
        self._dataset = ds
        self.rows = {}
        if ds is None:
            self.grid.children = []
            return
        head = ["", "level", "E", "weight", "F", "weight", "labels"]
        cells: list[widgets.Widget] = [widgets.HTML(f'<span class="wb-muted">{h}</span>') for h in head]
        for name in ds.fidelity_names:
            labels = ds.labels[name]
            fid_row = FidelityRow(name, int(labels.energy_mask.sum()), int(labels.forces_mask.sum()))
            fid_row.use.observe(self._on_use, "value")
            self.rows[name] = fid_row
            cells.extend(fid_row.cells())
        self.grid.children = cells
        self._on_use(None)

    def _on_use(self, _change) -> None:
        ds = self._dataset
        chosen = sorted((n for n, r in self.rows.items() if r.use.value), key=lambda n: (ds.fidelity(n).rank, n))
        self.target.options = chosen
        self.target.value = chosen[-1] if chosen else None
