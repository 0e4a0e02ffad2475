"""Training checkpoints: one safetensors file of tensors plus a JSON header; never a pickle.

A checkpoint holds what an uninterrupted run would still have in memory at the end of an epoch: the
model, the best weights so far, the EMA weights, the optimizer's moments, the learning-rate schedule,
the early-stopping counters, the torch random state and the history. It is written to a temporary
name, flushed to disk and renamed over the old one (``os.replace``), so a kill at any moment leaves
either the previous checkpoint or the new one, never half a file. Loading reads tensors with
safetensors and settings with ``json``: nothing in the file is executed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

FORMAT = "workbench-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the run: names the file and the problem."""


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for pid, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{pid}/{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        _, pid, key = name.split("/", 2)
        state.setdefault(int(pid), {})[key] = value
    for pid, entries in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(entries)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    return {"state": state, "param_groups": groups}


def save_checkpoint(path: str | os.PathLike, tensors: dict[str, dict[str, torch.Tensor]], meta: dict) -> None:
    """Write ``tensors`` (``{"model": state_dict, "best": ..., "ema": ..., "optimizer": optimizer
    state_dict}``) and ``meta`` (JSON) atomically to ``path``."""
    from safetensors.torch import save_file

    flat: dict[str, torch.Tensor] = {}
    header = dict(meta)
    for group, values in tensors.items():
        if values is None:
            continue
        if group == "optimizer":
            opt_tensors, opt_meta = _flatten_optimizer(values)
            flat.update(opt_tensors)
            header["optimizer"] = opt_meta
            continue
        for key, value in values.items():
            flat[f"{group}/{key}"] = value
    flat = {k: v.detach().to("cpu").contiguous() for k, v in flat.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(flat, str(tmp), metadata={"format": FORMAT, "meta": json.dumps(header)})
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[dict, dict]:
    """``(tensors by group, meta)`` of a checkpoint written by :func:`save_checkpoint`.

    Anything else (a pickle from ``torch.save``, a truncated file) raises :class:`CheckpointError`
    without being executed.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            header = f.metadata() or {}
            flat = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors has its own error types for anything that is not its format
        raise CheckpointError(
            f"{path}: not a workbench checkpoint (a safetensors file is expected; pickles are never loaded): {exc}"
        ) from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {header.get('format')!r}, expected {FORMAT!r}")
    meta = json.loads(header["meta"])
    groups: dict[str, dict] = {}
    optim: dict[str, torch.Tensor] = {}
    for name, value in flat.items():
        group, key = name.split("/", 1)
        if group == "optim":
            optim[name] = value
        else:
            groups.setdefault(group, {})[key] = value
    if "optimizer" in meta:
        groups["optimizer"] = _unflatten_optimizer(optim, meta.pop("optimizer"))
    return groups, meta
