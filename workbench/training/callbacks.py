"""Progress callbacks: what a training run tells the outside world while it runs.

A callback is a :class:`Callback` (override any of its three methods) or a plain function, which is
called with each epoch's history row (a dict: ``stage``, ``epoch``, ``lr``, ``time``, ``train_loss``,
``val_loss`` and the per-fidelity errors). A terminal gets a tqdm bar (:class:`TqdmProgress`); the
notebook UI passes its own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable


class Callback:
    """Hooks called by the trainer, from the thread that trains."""

    def on_stage_begin(self, stage: str, max_epochs: int) -> None:
        """A training stage starts (``"train"``, or e.g. ``"pretrain"`` then ``"finetune"``)."""

    def on_epoch_end(self, stage: str, record: dict) -> None:
        """An epoch ended; ``record`` is its history row (losses, errors in eV and eV/Å)."""

    def on_stage_end(self, stage: str, reason: str) -> None:
        """A stage ended: ``reason`` is ``"early stopping"``, ``"max_epochs"``, ``"max_time"``,
        ``"cancelled"``, ``"diverged"`` or ``"resumed finished"``."""


class FunctionCallback(Callback):
    """Calls ``fn(record)`` at the end of every epoch."""

    def __init__(self, fn: Callable[[dict], None]):
        self.fn = fn

    def on_epoch_end(self, stage: str, record: dict) -> None:
        self.fn(record)


class TqdmProgress(Callback):
    """A tqdm bar per stage with the latest training and validation loss."""

    def __init__(self, **tqdm_options):
        self.options = tqdm_options
        self.bar = None

    def on_stage_begin(self, stage: str, max_epochs: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=max_epochs, desc=stage, unit="epoch", **self.options)

    def on_epoch_end(self, stage: str, record: dict) -> None:
        if self.bar is None:
            return
        self.bar.n = record["epoch"] + 1
        post = {"loss": f"{record['train_loss']:.4g}"}
        if record.get("val_loss") is not None:
            post["val"] = f"{record['val_loss']:.4g}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.refresh()

    def on_stage_end(self, stage: str, reason: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(reason)
            self.bar.close()
            self.bar = None


def as_callbacks(callbacks, progress) -> list[Callback]:
    """Callback objects from a list of callbacks/functions, plus a tqdm bar when ``progress`` is
    True (or None and standard error is a terminal)."""
    if callbacks is None:
        callbacks = []
    elif isinstance(callbacks, Callback) or callable(callbacks):
        callbacks = [callbacks]
    out = [c if isinstance(c, Callback) else FunctionCallback(c) for c in _iter(callbacks)]
    if progress is True or (progress is None and sys.stderr.isatty()):
        out.append(TqdmProgress())
    return out


def _iter(items) -> Iterable:
    for c in items:
        if not (isinstance(c, Callback) or callable(c)):
            raise TypeError(f"a callback must be a workbench Callback or a function of one record, got {c!r}")
        yield c
