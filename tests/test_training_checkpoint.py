"""Checkpoints: atomic, resumable after a kill with the same result, never unpickled; divergence
stops with a clear message and keeps the last good checkpoint."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.models import ModelFileError
from workbench.training import CheckpointError, TrainedModel, TrainingDiverged, load_checkpoint
from workbench.training.callbacks import Callback
from workbench.training.data import TensorData
from workbench.training.settings import TrainSettings
from workbench.training.stages import make_loss, new_model
from workbench.training.trainer import Trainer, exploded

FID = "pbe+vdw-ts"
SMALL = "{n_features: 8, n_interactions: 1, n_atom_layers: 1, n_sensitivities: 6, cutoff: 4.0}"


def config(tmp_path: Path, name: str, epochs: int) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"""
data: builtin:md17-ethanol-sample
split: [0.8, 0.2]
family: hipnn
recipe: single
model: {SMALL}
training: {{max_epochs: {epochs}, patience: 1000, batch_size: 2, lr: 0.005, dtype: float64, seed: 3,
            ema_decay: 0.9, lr_patience: 2}}
output: {name}.wb
checkpoint: {name}-ckpt/
"""
    )
    return path


def run_cli(cfg: Path, *extra) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "workbench.cli", "train", str(cfg), "--quiet", *extra]
    return subprocess.Popen(cmd, cwd=cfg.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def checkpoint_epoch(path: Path) -> int:
    try:
        return load_checkpoint(path)[1]["epoch"]
    except CheckpointError:
        return -1


@pytest.mark.slow
def test_resume_after_kill_gives_the_uninterrupted_result(tmp_path):
    epochs = 30
    whole = run_cli(config(tmp_path, "whole", epochs))
    killed_cfg = config(tmp_path, "killed", epochs)
    proc = run_cli(killed_cfg)
    ckpt = tmp_path / "killed-ckpt" / "train.ckpt"
    deadline = time.time() + 120
    while time.time() < deadline and checkpoint_epoch(ckpt) < 5:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = checkpoint_epoch(ckpt)
    assert 5 <= stopped_at < epochs, f"the run was killed at epoch {stopped_at}"
    assert not (tmp_path / "killed.wb").exists()
    resumed = run_cli(killed_cfg, "--resume")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    out, _ = whole.communicate(timeout=300)
    assert whole.returncode == 0, out
    a = TrainedModel.load(tmp_path / "whole.wb")
    b = TrainedModel.load(tmp_path / "killed.wb")
    for key, value in a.module.state_dict().items():
        assert torch.equal(value, b.module.state_dict()[key]), key
    cols = ["epoch", "lr", "train_loss", "val_loss"]
    assert len(a.history) == len(b.history) == epochs
    assert a.history[cols].equals(b.history[cols])
    # The resumed run did not start over: its first epochs come from the checkpoint.
    assert b.history["time"].iloc[stopped_at] > 0


def test_checkpoint_loading_refuses_pickles(tmp_path):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    bad = tmp_path / "train.ckpt"
    torch.save({"model": Payload()}, bad)
    with pytest.raises(CheckpointError, match="pickles are never loaded"):
        load_checkpoint(bad)
    # A trained-model zip with a pickled member is refused too, before anything is read.
    archive = tmp_path / "run.wb"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(bad, "model.pt")
        zf.writestr("trained.json", "{}")
    with pytest.raises(ModelFileError, match="unexpected member"):
        TrainedModel.load(archive)
    # Even named like a safetensors file, a pickle is not loaded.
    archive2 = tmp_path / "run2.wb"
    with zipfile.ZipFile(archive2, "w") as zf:
        zf.write(bad, "model.safetensors")
        zf.writestr("trained.json", '{"format": "workbench-trained/1"}')
    with pytest.raises(ModelFileError):
        TrainedModel.load(archive2)
    assert not marker.exists()


class Poison(Callback):
    """Puts a NaN into the weights at the end of one epoch (after its checkpoint is written)."""

    def __init__(self, model, epoch):
        self.model, self.epoch = model, epoch

    def on_epoch_end(self, stage, record):
        if record["epoch"] == self.epoch:
            with torch.no_grad():
                next(self.model.parameters()).view(-1)[0] = float("nan")


def test_nan_stops_training_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    ds = wb.datasets.builtin("md17-ethanol-sample")
    settings = TrainSettings(max_epochs=20, batch_size=5, lr=1e-3, dtype="float64")
    model = new_model("hipnn", [1, 6, 8], [FID], dict(n_features=8, n_interactions=1, n_atom_layers=1), settings)
    model.initialise(ds)
    loss = make_loss(ds, {FID: FID}, settings)
    data = TensorData(ds, [FID], torch.device("cpu"), torch.float64)
    ckpt = tmp_path / "train.ckpt"
    trainer = Trainer(model, settings, loss, callbacks=[Poison(model, 2)], checkpoint=ckpt)
    with pytest.raises(
        TrainingDiverged, match=r"epoch 3: the loss or its gradient became nan.*last good checkpoint"
    ) as caught:
        trainer.fit(data)
    # the error crosses a process boundary (a process pool, Dask) whole
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool, pytest.raises(TrainingDiverged) as again:
        pool.submit(_raise, str(caught.value), caught.value.epoch, caught.value.checkpoint).result()
    assert (str(again.value), again.value.epoch, again.value.checkpoint) == (str(caught.value), 3, ckpt)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    groups, meta = load_checkpoint(ckpt)
    assert meta["epoch"] == 3 and len(meta["records"]) == 3
    assert all(torch.isfinite(v).all() for v in groups["model"].values())
    # The model went back to the best weights before the NaN: its loss is finite and no worse.
    value, _ = trainer.evaluate(data)
    assert np.isfinite(value) and value <= 1.0001 * min(r["train_loss"] for r in meta["records"]) * 1.5


def _raise(message, epoch, checkpoint):
    raise TrainingDiverged(message, epoch, checkpoint)


class Blowup(Callback):
    """Multiplies every weight by ``factor`` at the end of one epoch: the loss explodes but stays finite."""

    def __init__(self, model, epoch, factor):
        self.model, self.epoch, self.factor = model, epoch, factor

    def on_epoch_end(self, stage, record):
        if record["epoch"] == self.epoch:
            with torch.no_grad():
                for p in self.model.parameters():
                    p.mul_(self.factor)


def test_an_exploding_loss_stops_training_but_the_noise_of_a_tiny_loss_does_not(tmp_path):
    ds = wb.datasets.builtin("md17-ethanol-sample")
    settings = TrainSettings(max_epochs=10, batch_size=5, lr=1e-3, ema_decay=None, explode_factor=100.0)
    model = new_model("hipnn", [1, 6, 8], [FID], dict(n_features=8, n_interactions=1, n_atom_layers=1), settings)
    model.initialise(ds)
    loss = make_loss(ds, {FID: FID}, settings)
    data = TensorData(ds, [FID], torch.device("cpu"), torch.float32)
    trainer = Trainer(model, settings, loss, callbacks=[Blowup(model, 2, 30.0)])
    with pytest.raises(TrainingDiverged, match=r"epoch 3: the training loss exploded"):
        trainer.fit(data)
    # the rule: above the factor times the best epoch so far and above the stage's first epoch
    assert exploded(5.0, [1.0, 0.01], 100.0) and not exploded(5.0, [1.0, 0.06], 100.0)
    assert not exploded(0.025, [0.3, 0.01, 2.4e-5], 100.0)  # a loss fitted to almost nothing, then noise
    assert not exploded(1e9, [], 100.0)  # the first epoch has nothing to compare with
