"""The state the panels of the workbench share: the dataset on show and the configuration looked at."""

from __future__ import annotations

import pandas as pd
import traitlets

from ..data.dataset import Dataset


class WorkbenchState(traitlets.HasTraits):
    """Shared, observable state of one workbench.

    Panels observe its traits (``state.observe(callback, "dataset")``) and set them; they never
    reach into each other. Later panels add their own traits here (training runs, chosen models).

    Attributes
    ----------
    dataset
        The dataset every panel works on (energies eV, positions Å, forces eV/Å), or None.
    dataset_name
        Where it came from, in words (a built-in name or a file name).
    configuration
        Index of the configuration being looked at (structure browser, later the analyses).
    """

    dataset = traitlets.Instance(Dataset, allow_none=True)
    dataset_name = traitlets.Unicode("")
    configuration = traitlets.Int(0)

    def __init__(self, dataset: Dataset | None = None, dataset_name: str = "", **kwargs):
        super().__init__(**kwargs)
        self._references: pd.DataFrame | None = None
        self._residuals: pd.DataFrame | None = None
        if dataset is not None:
            self.set_dataset(dataset, dataset_name or "dataset")

    def set_dataset(self, dataset: Dataset, name: str) -> None:
        """Show another dataset everywhere, from its configuration 0.

        All three traits change before any observer runs, so an observer of ``configuration`` never
        sees the new index with the old dataset.
        """
        self._references = None
        self._residuals = None
        with self.hold_trait_notifications():
            self.dataset_name = name
            self.configuration = 0
            self.dataset = dataset

    @property
    def atomic_references(self) -> pd.DataFrame:
        """Per-element reference energies (eV) fitted on the current dataset, elements x fidelities."""
        if self._references is None:
            self._references = self.dataset.atomic_references()
        return self._references

    @property
    def residuals(self) -> pd.DataFrame:
        """Per-atom energies minus the atomic references (eV/atom), configurations x fidelities."""
        if self._residuals is None:
            from ..viz.dataset import per_atom_residuals

            self._residuals = per_atom_residuals(self.dataset, self.atomic_references)
        return self._residuals
