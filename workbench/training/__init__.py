"""Training: the masked multi-fidelity trainer, recipes, jobs, checkpoints and trained models.

>>> job = train(ds, family="hipnn", recipe="multifidelity",
...             fidelities={"gfn2-xtb": ("energy", "forces"), "ccsd(t)/cc-pvdz": ("energy",)})
>>> model = job.result()                      # TrainedModel
>>> model.save("run.wb"); TrainedModel.load("run.wb")
"""

from .api import train
from .callbacks import Callback, TqdmProgress
from .checkpoint import CheckpointError, load_checkpoint
from .continuation import continue_training
from .loss import MaskedLoss
from .recipes import RECIPES, LearningCurve
from .settings import TrainSettings
from .trained import TrainedModel
from .trainer import Trainer, TrainingCancelled, TrainingDiverged
from .training_job import TrainingJob

__all__ = [
    "RECIPES",
    "Callback",
    "CheckpointError",
    "LearningCurve",
    "MaskedLoss",
    "TqdmProgress",
    "TrainSettings",
    "TrainedModel",
    "Trainer",
    "TrainingCancelled",
    "TrainingDiverged",
    "TrainingJob",
    "continue_training",
    "load_checkpoint",
    "train",
]
