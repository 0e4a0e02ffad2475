"""Optimizer parameter groups (layer-wise learning rates, frozen layers) and an EMA of the weights.

Discriminative fine-tuning gives the layers near the input smaller learning rates than those near the
output, and may freeze some altogether (Zaverkin et al., "Transfer learning for chemically accurate
interatomic neural network potentials", Phys. Chem. Chem. Phys. 25, 5383 (2023)).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import nn


def layer_of(name: str) -> str:
    """The layer group of a parameter name: its first component, with the index when the first is a
    list of layers (``"blocks.1.0.interaction.weight"`` -> ``"blocks.1"``; ``"heads.readouts.0.0.bias"``
    -> ``"heads"``)."""
    parts = name.split(".")
    if len(parts) > 2 and parts[1].isdigit() and parts[0] != "heads":
        return f"{parts[0]}.{parts[1]}"
    return parts[0]


def layer_groups(model: nn.Module) -> list[tuple[str, list[tuple[str, nn.Parameter]]]]:
    """Parameters grouped by layer, from the input to the output (the heads last)."""
    groups: dict[str, list] = {}
    for name, p in model.named_parameters():
        groups.setdefault(layer_of(name), []).append((name, p))
    order = [g for g in groups if g != "heads"] + (["heads"] if "heads" in groups else [])
    return [(g, groups[g]) for g in order]


def parameter_groups(
    model: nn.Module,
    lr: float,
    layer_lr_decay: float = 1.0,
    freeze: Sequence[str] = (),
    train_references: bool = False,
) -> list[dict]:
    """Optimizer groups: the output layer group gets ``lr``, the one before it ``lr * decay``, and so
    on back to the input. Parameters whose names start with a ``freeze`` prefix, the reference
    energies (unless ``train_references``), and parameters that already do not require grad are left
    out and set to ``requires_grad=False``."""
    groups = layer_groups(model)
    unknown = [f for f in freeze if not any(n.startswith(f) for _, ps in groups for n, _ in ps)]
    if unknown:
        names = [g for g, _ in groups]
        raise ValueError(f"freeze prefixes {unknown} match no parameter; layer groups are {names}")
    out = []
    for depth, (group, params) in enumerate(reversed(groups)):
        keep = []
        for name, p in params:
            frozen = any(name.startswith(f) for f in freeze) or (name.endswith("references") and not train_references)
            if frozen:
                p.requires_grad_(False)
            elif p.requires_grad:
                keep.append(p)
        if keep:
            out.append({"params": keep, "lr": lr * layer_lr_decay**depth, "name": group})
    if not out:
        raise ValueError("every parameter is frozen: nothing to train")
    return out[::-1]


def make_optimizer(groups: list[dict], kind: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    return cls(groups, lr=lr, weight_decay=weight_decay)


class EMA:
    """Exponential moving average ``w_ema <- d * w_ema + (1 - d) * w`` of the trainable weights.

    The decay warms up as ``d_t = min(decay, (1 + t) / (10 + t))`` after ``t`` updates, so the average
    follows the first steps closely instead of holding on to the random initial weights.
    """

    #: Key of the update count in :meth:`state_dict`.
    STEPS = "__ema_steps__"

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.steps = 0
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        params = dict(model.named_parameters())
        self.shadow = {n: params[n].detach().clone() for n in self.names}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        params = dict(model.named_parameters())
        for n in self.names:
            self.shadow[n].lerp_(params[n].detach(), 1.0 - decay)

    @contextlib.contextmanager
    def swapped_in(self, model: nn.Module):
        """Within the block the model holds the averaged weights; its own come back afterwards."""
        params = dict(model.named_parameters())
        saved = {n: params[n].detach().clone() for n in self.names}
        with torch.no_grad():
            for n in self.names:
                params[n].copy_(self.shadow[n])
        try:
            yield model
        finally:
            with torch.no_grad():
                for n in self.names:
                    params[n].copy_(saved[n])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**self.shadow, self.STEPS: torch.tensor([self.steps], dtype=torch.int64)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.names) - set(state)
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)}")
        for n in self.names:
            self.shadow[n].copy_(state[n])
        # a state without the count comes from before the warm-up existed: it ran at the full decay
        self.steps = int(state[self.STEPS][0]) if self.STEPS in state else 10**9
