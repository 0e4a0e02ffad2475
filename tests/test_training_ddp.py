"""`workbench train` under torchrun: DistributedDataParallel with 2 CPU processes (gloo) gives the
model that one process training on the same global batches gives."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workbench.training import TrainedModel

CONFIG = """
data: builtin:md17-ethanol-sample
split: [0.8, 0.2]
family: hipnn
recipe: multifidelity
model: {n_features: 8, n_interactions: 1, n_atom_layers: 1, n_sensitivities: 6, cutoff: 4.0}
training: {max_epochs: 3, batch_size: 4, lr: 0.005, dtype: float64, seed: 1, patience: 100}
output: run.wb
"""


def torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [shutil.which("torchrun") or "torchrun"]


# Two levels, the high one on 6 of the 20 frames, with heads tied: each process's batches often lack
# the high level, and the tie's gradient, added outside DDP's averaging, must keep the processes equal.
TIED = CONFIG.replace("data: builtin:md17-ethanol-sample", "data: two-levels.h5").replace(
    "recipe: multifidelity",
    "recipe: multifidelity\nfidelities: {gfn2-xtb: [energy, forces], pbe+vdw-ts: [energy]}\n"
    "budget: {pbe+vdw-ts: 6}\noptions: {tie_heads: 0.1}",
)


@pytest.mark.slow
@pytest.mark.parametrize("config", [CONFIG, TIED], ids=["one level", "two levels, tied heads"])
def test_two_process_ddp_matches_one_process(tmp_path, config):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if config is TIED:
        import workbench as wb
        from workbench.qm import label

        sample = wb.datasets.builtin("md17-ethanol-sample")
        label(sample, "gfn2-xtb", background=False, progress=False).result().save(tmp_path / "two-levels.h5")
    for name in ("ddp", "single"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.yaml").write_text(config.replace("two-levels.h5", str(tmp_path / "two-levels.h5")))
    ddp = subprocess.Popen(
        [*torchrun(), "--standalone", "--nproc_per_node", "2", "-m", "workbench.cli", "train", "run.yaml", "--quiet"],
        cwd=tmp_path / "ddp",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    single = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "train", "run.yaml", "--quiet"],
        cwd=tmp_path / "single",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out, _ = ddp.communicate(timeout=300)
    assert ddp.returncode == 0, out
    assert single.returncode == 0, single.stdout + single.stderr
    a = TrainedModel.load(tmp_path / "ddp" / "run.wb")
    b = TrainedModel.load(tmp_path / "single" / "run.wb")
    # the default multi-fidelity recipe: the joint fit, then fine-tuning on the target, both under DDP
    assert a.history.groupby("stage", sort=False).size().to_dict() == {"train": 3, "finetune": 3}
    for key, value in a.module.state_dict().items():
        torch.testing.assert_close(value, b.module.state_dict()[key], rtol=1e-7, atol=1e-9)
    assert a.history["train_loss"].iloc[-1] < a.history["train_loss"].iloc[0]
    if config is TIED:
        joint_a, joint_b = (h[h["stage"] == "train"] for h in (a.history, b.history))
        assert joint_a["head_tie_penalty"].tolist() == pytest.approx(joint_b["head_tie_penalty"].tolist())
    for col in ("train_loss", "val_loss"):
        assert a.history[col].tolist() == pytest.approx(b.history[col].tolist(), rel=1e-7)
