"""The improve loop: rounds of choosing configurations where a model is unsure or wrong, labelling them at the
chosen level, and training the model further.

>>> job = wb.improve(model, ds, candidates=pool, level="ccsd(t)/cc-pvdz", n_per_round=10, rounds=3)
>>> job.rounds            # labels and QM seconds spent, training seconds, test errors, scan scores per round
>>> result = job.result() # ImproveResult: the models, the grown data, the record
"""

from .candidates import ModelMD, Pool, ScanGeometries
from .loop import ImproveJob, ImproveResult, improve
from .selection import CRITERIA, disagreement, last_layer_features, select, variance

__all__ = [
    "CRITERIA",
    "ImproveJob",
    "ImproveResult",
    "ModelMD",
    "Pool",
    "ScanGeometries",
    "disagreement",
    "improve",
    "last_layer_features",
    "select",
    "variance",
]
