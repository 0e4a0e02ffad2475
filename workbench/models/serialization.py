"""Save and load models as safetensors files: tensors plus JSON settings, never pickles.

One file holds the state dict (raw tensor bytes, so a round trip is bit-exact) and, in the
safetensors header, the family name and its JSON settings. Loading rebuilds the model from the
settings through the registry and assigns the stored tensors; nothing in the file is executed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

FORMAT = "workbench-model/1"


class ModelFileError(ValueError):
    """A model file that cannot be read: names the file and the problem."""


def save_model(model, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write ``model`` (an :class:`~workbench.models.base.AtomisticModel`) to ``path``.

    ``metadata`` (JSON-serialisable) is stored beside the settings and returned by :func:`read_metadata`.
    The file is written to a temporary name and renamed, so a crash never leaves half a file.
    """
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    header = {
        "format": FORMAT,
        "family": model.family,
        "settings": json.dumps(model.get_settings()),
        "metadata": json.dumps(metadata or {}),
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=header)
    os.replace(tmp, path)


def _read(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for anything that is not its format
        raise ModelFileError(f"{path}: not a workbench model file (expected safetensors): {exc}") from None
    if header.get("format") != FORMAT:
        raise ModelFileError(f"{path}: unknown model format {header.get('format')!r}, expected {FORMAT!r}")
    return header, tensors


def read_metadata(path: str | os.PathLike) -> dict:
    """``{"family", "settings", "metadata"}`` of a model file, without building the model."""
    header, _ = _read(path)
    return {
        "family": header["family"],
        "settings": json.loads(header["settings"]),
        "metadata": json.loads(header.get("metadata", "{}")),
    }


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Rebuild a model saved by :func:`save_model`, with its stored tensors (dtype kept), on ``device``."""
    from .registry import get_family

    header, tensors = _read(path, device)
    try:
        cls = get_family(header["family"])
        model = cls(**json.loads(header["settings"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: cannot rebuild the model from its settings: {exc}") from None
    model.to(device)
    try:
        # assign=True keeps the stored dtype (float64 models stay float64) and the bytes as stored.
        model.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: stored tensors do not fit the {header['family']!r} model: {exc}") from None
    return model
