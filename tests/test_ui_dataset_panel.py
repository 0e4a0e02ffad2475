"""What a click in the Dataset panel changes, without a browser."""

from datetime import datetime, timezone

import numpy as np
import pytest
from ase.build import molecule

import workbench as wb
from workbench.data import Dataset
from workbench.ui import DatasetPanel, Workbench, WorkbenchState
from workbench.ui import dataset_panel as panel_module


@pytest.fixture
def panel():
    return DatasetPanel(builtin="ani1x-sample")


def test_panel_opens_on_a_builtin_dataset(panel):
    ds = panel.state.dataset
    assert panel.state.dataset_name == "builtin:ani1x-sample" and len(ds) == 8
    assert list(panel.coverage.data[0].y) == ds.fidelity_names
    assert "ani1x-sample" in panel.summary.value and "8 configurations" in panel.summary.value
    assert panel.configuration.max == 7
    assert panel.error.layout.display == "none"
    assert "CH4N4O4" in panel.configuration_info.value


def test_default_dataset_is_ethanol_when_installed(monkeypatch):
    monkeypatch.setattr(panel_module.datasets, "names", lambda: ["ani1x-sample", "ethanol"])
    assert panel_module.default_builtin() == "ethanol"
    monkeypatch.setattr(panel_module.datasets, "names", lambda: ["md17-ethanol-sample", "ani1x-sample"])
    assert panel_module.default_builtin() == "md17-ethanol-sample"
    monkeypatch.setattr(panel_module.datasets, "names", lambda: [])
    assert panel_module.default_builtin() is None


def test_choosing_another_builtin_updates_the_figures(panel):
    panel.builtin.value = "md17-ethanol-sample"
    assert panel.state.dataset_name == "builtin:md17-ethanol-sample"
    heat = panel.coverage.data[0]
    assert list(heat.y) == ["pbe+vdw-ts"] and np.asarray(heat.customdata).tolist() == [[20, 20]]
    violins = [t for t in panel.energies.data if t.type == "violin"]
    assert [v.name for v in violins] == ["pbe+vdw-ts"] and len(violins[0].x) == 20
    assert panel.configuration.max == 19 and panel.configuration.value == 0
    assert "C2H6O" in panel.summary.value
    assert "pbe+vdw-ts" in panel.labels.value and "hf/cc-pvdz" not in panel.labels.value


def test_invalid_path_shows_the_error_and_keeps_the_data(panel, tmp_path):
    before = panel.state.dataset
    panel.path.value = str(tmp_path / "missing.h5")
    panel.load_button.click()
    assert panel.error.layout.display is None
    assert "missing.h5" in panel.error.value and "no such file" in panel.error.value
    assert panel.state.dataset is before and "8 configurations" in panel.summary.value

    text = tmp_path / "notes.h5"
    text.write_text("these are notes, not HDF5\n")
    panel.path.value = str(text)
    panel.load_button.click()
    assert "notes.h5" in panel.error.value and "HDF5" in panel.error.value
    assert panel.state.dataset is before


def test_loading_a_file_with_options_clears_the_error(panel, md17_db_path):
    # This database does not say its units: the reader's message asks for them ...
    panel.path.value = str(md17_db_path)
    panel.load_button.click()
    assert "energy_unit" in panel.error.value and panel.state.dataset_name == "builtin:ani1x-sample"
    # ... and the options field passes them on.
    panel.options.value = "energy_unit=kcal/mol, force_unit=kcal/mol/angstrom fidelity=pbe+vdw-ts"
    panel.load_button.click()
    assert panel.error.value == "" and panel.error.layout.display == "none"
    assert panel.state.dataset_name == "test_ethanol.db" and len(panel.state.dataset) == 20
    assert panel.state.dataset.fidelity_names == ["pbe+vdw-ts"]
    assert panel.builtin.value is None  # the menu no longer claims a built-in dataset
    panel.options.value = "energy_unit"
    panel.load_button.click()
    assert "key=value" in panel.error.value


def test_unknown_builtin_is_reported_and_the_menu_points_back(panel):
    assert not panel.load_builtin("no-such-dataset")
    assert "no built-in dataset" in panel.error.value and "&#x27;" not in panel.error.value[:60]
    assert panel.state.dataset_name == "builtin:ani1x-sample"


def test_upload_loads_the_file(ani_path):
    panel = DatasetPanel(builtin="md17-ethanol-sample")
    content = ani_path.read_bytes()
    upload = {"name": "ani.h5", "type": "", "size": len(content), "content": memoryview(content)}
    panel.upload.value = ({**upload, "last_modified": datetime.now(timezone.utc)},)
    assert panel.state.dataset_name == "ani.h5" and len(panel.state.dataset) == 8
    assert panel.error.value == "" and panel.upload.value == ()


def test_moving_the_slider_shows_that_configuration(panel):
    before = panel.labels.value
    panel.configuration.value = 4
    assert panel.state.configuration == 4
    assert panel.configuration_text.value == 4
    assert "Configuration <b>4</b>" in panel.configuration_info.value
    assert panel.labels.value != before
    energy = panel.state.dataset.energy("wb97x/6-31g*")[0][4]
    assert f"{energy:,.4f}" in panel.labels.value
    marker = panel.energies.data[-1]
    assert list(marker.y) == ["wb97x/6-31g*", "wb97x/def2-tzvpp"] and marker.name == "configuration 4"
    replaced = [m for m in panel.view._ngl_msg_archive if m["methodName"] == "replaceStructure"]
    assert len(replaced) == 1 and replaced[0]["args"][0]["data"].count("ATOM  ") == 14


def test_typing_a_configuration_number_moves_the_slider(panel):
    panel.configuration_text.value = 6
    assert panel.configuration.value == 6 and panel.state.configuration == 6
    assert "C2H10N4O3" in panel.configuration_info.value


def test_panel_shows_a_dataset_given_in_python():
    records = []
    for name in ("H2O", "NH3", "CH4"):
        atoms = molecule(name)
        records.append({"numbers": atoms.numbers, "positions": atoms.positions, "info": {"name": name}})
    records[0]["energy"] = {"gfn2-xtb": -137.97}
    ds = Dataset.from_configurations(records)
    panel = DatasetPanel(dataset=ds)
    assert panel.state.dataset is ds and panel.state.dataset_name == "dataset given in Python"
    assert np.asarray(panel.coverage.data[0].customdata).tolist() == [[1, 0]]
    panel.configuration.value = 2
    assert "CH4" in panel.configuration_info.value and "—" in panel.labels.value


def test_workbench_tabs_share_one_state(ani_path):
    ds = wb.load(ani_path)
    state = WorkbenchState()
    app = Workbench(dataset=ds, state=state)
    panel = app.panels["Dataset"]
    assert app.state is state and panel.state is state and state.dataset is ds
    assert app.tabs.titles == ("Dataset", "Training", "Compare", "PES", "Vibrations", "Improve")
    # Another panel setting the shared configuration moves the structure browser.
    state.configuration = 3
    assert panel.configuration.value == 3 and "Configuration <b>3</b>" in panel.configuration_info.value
    # A second panel on the same state opens on what is shown, without loading anything.
    twin = DatasetPanel(state)
    assert twin.state.dataset is ds and twin.configuration.value == 3
    other = wb.datasets.builtin("md17-ethanol-sample")
    state.set_dataset(other, "builtin:md17-ethanol-sample")
    assert list(panel.coverage.data[0].y) == list(twin.coverage.data[0].y) == ["pbe+vdw-ts"]
    assert twin.builtin.value == "md17-ethanol-sample" and panel.configuration.value == 0
