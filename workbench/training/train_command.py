"""``workbench train CONFIG.yaml``: run any recipe from a YAML file.

    workbench train run.yaml [--set training.max_epochs=50 ...] [--resume]
    torchrun --nproc_per_node 2 -m workbench.cli train run.yaml     # DistributedDataParallel (gloo on CPU)

A configuration (every key but ``data`` optional)::

    data: ethanol.h5                 # a file wb.load reads, a list of files, or builtin:ethanol
    split: [0.8, 0.1, 0.1]           # train / validation / test fractions (seeded by training.seed)
    budget: {ccsd(t)/cc-pvdz: 100}   # keep the labels of only the first n configurations at a level
    family: hipnn
    model: {n_features: 32}
    recipe: multifidelity
    fidelities: {gfn2-xtb: [energy, forces], ccsd(t)/cc-pvdz: [energy]}
    target: ccsd(t)/cc-pvdz
    training: {max_epochs: 200, lr: 1.0e-3, batch_size: 32, device: auto, seed: 0}
    options: {finetune_epochs: 200}  # recipe options (multifidelity: residual heads, then fine-tuning)
    output: run.wb                   # the trained model (zip of JSON + safetensors)
    checkpoint: run-checkpoints/     # per-epoch checkpoints, for --resume

The test part, when there is one, is evaluated at the target and printed (eV, eV/Å).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

KEYS = {
    "data",
    "split",
    "budget",
    "family",
    "model",
    "recipe",
    "fidelities",
    "target",
    "training",
    "options",
    "output",
    "checkpoint",
}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``train`` on the ``workbench`` command's subparsers."""
    p = subparsers.add_parser(
        "train",
        help="train a model from a YAML configuration (any recipe)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="YAML file with the keys below")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a configuration value, e.g. training.max_epochs=50 (repeatable)",
    )
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint folder")
    p.add_argument("--output", help="where to save the trained model (overrides the configuration)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def read_config(path: str | Path, overrides=()) -> dict:
    """The configuration in ``path`` with ``KEY=VALUE`` overrides (dotted keys; values read as YAML)."""
    import yaml

    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the training configuration: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the training configuration must be a mapping of keys to values")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        node = config
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    unknown = set(config) - KEYS
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(KEYS)}")
    if "data" not in config:
        raise ValueError(f"{path}: 'data' (a file, a list of files or builtin:NAME) is required")
    return config


def load_data(spec, base: Path):
    from ..data.builtin import builtin
    from ..data.io import load

    if isinstance(spec, str) and spec.startswith("builtin:"):
        return builtin(spec.split(":", 1)[1])
    if isinstance(spec, list):
        return load([str(base / s) for s in spec])
    return load(str(base / spec))


def prepare(config: dict, base: Path, seed: int):
    """``(train, validation, test)`` from the configuration's data, split and budget."""
    ds = load_data(config["data"], base)
    split = config.get("split", [0.9, 0.1])
    parts = ds.split(split, seed=seed)
    train, validation = parts[0], parts[1] if len(parts) > 1 else None
    test = parts[2] if len(parts) > 2 else None
    for fidelity, n in (config.get("budget") or {}).items():
        have = np.flatnonzero(train.labels[train.fidelity(fidelity).name].energy_mask)
        keep = np.random.default_rng(seed).permutation(have)[: int(n)]
        train = train.keep_labels(fidelity, indices=keep, properties=("energy", "forces"))
    return train, validation, test


def distributed_from_env():
    """Set up torch.distributed (gloo on CPU, nccl on GPU) when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    import torch
    import torch.distributed as dist

    from .trainer import Distributed

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank()
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return Distributed(rank, dist.get_world_size())


def run(args) -> int:
    from . import train

    config = read_config(args.config, args.overrides)
    base = Path(args.config).resolve().parent
    training = dict(config.get("training") or {})
    seed = int(training.get("seed", 0))
    distributed = distributed_from_env()
    main = distributed is None or distributed.rank == 0
    if distributed is not None and training.get("device", "auto") == "auto":
        import torch

        training["device"] = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu"
    train_set, validation, test = prepare(config, base, seed)
    checkpoint = config.get("checkpoint")
    job = train(
        train_set,
        family=config.get("family", "hipnn"),
        recipe=config.get("recipe", "multifidelity"),
        fidelities=config.get("fidelities"),
        validation=validation,
        target=config.get("target"),
        model=config.get("model"),
        settings=training,
        checkpoint=base / checkpoint if checkpoint else None,
        resume=args.resume,
        background=False,
        progress=None if main and not args.quiet else False,
        distributed=distributed,
        **(config.get("options") or {}),
    )
    try:
        result = job.result()
    finally:
        if distributed is not None:
            import torch.distributed as dist

            dist.destroy_process_group()
    if not main:
        return 0
    output = args.output or config.get("output")
    models = result.models if hasattr(result, "models") else {"": result}
    for key, model in models.items():
        if output:
            path = (
                Path(output) if not key else Path(output).with_name(f"{Path(output).stem}-n{key}{Path(output).suffix}")
            )
            model.save(path)
            print(f"saved {path}")
        if test is not None and model.target in test.labels:
            print(json.dumps({"budget": key, **model.evaluate(test, model.target)} if key else model.evaluate(test)))
    if hasattr(result, "table"):
        print(result.table.to_string())
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
