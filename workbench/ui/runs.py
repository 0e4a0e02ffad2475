"""Training runs as the workbench keeps them: each is a :class:`~workbench.training.TrainingJob` under a name.

A run outlives the panel that started it: it lives in the shared :class:`~workbench.ui.state.WorkbenchState`,
so a panel drawn again (or a second panel on the same state) finds every run, finished or still training, and
follows it by subscribing to the job (:meth:`workbench.jobs.Job.subscribe`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .html import table


def runs_html(runs: dict) -> str:
    """The runs (name -> training job) as a table: name, strategy, state, epochs, best validation loss, wall
    time."""
    if not runs:
        return '<div class="wb-muted">No runs yet: choose the settings above and press Start.</div>'
    rows = []
    for name, job in runs.items():
        history = job.history
        best = history["val_loss"].min() if "val_loss" in history and history["val_loss"].notna().any() else np.nan
        rows.append(
            {
                "run": name,
                "what": job.description,
                "state": job.state,
                "epochs": job.epochs,
                "best val loss": best,
                "time (s)": job.wall_time_s if job.finished else np.nan,
            }
        )
    frame = pd.DataFrame(rows).set_index("run")
    return table(frame, {"best val loss": ".4g", "time (s)": ".1f"})
