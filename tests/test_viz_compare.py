"""Figures that compare models: the data each trace carries is checked, not only that a figure came back."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from test_analysis_metrics import FID, LabelCalculator, md17

from workbench import analysis
from workbench.viz import compare


def two_models():
    ds = md17()
    return ds, {"perfect": LabelCalculator(ds, FID), "shifted": LabelCalculator(ds, FID, 0.05, (0.2, 0.0, 0.0))}


def test_energy_parity_points_carry_configurations_and_sit_where_the_errors_put_them():
    ds, models = two_models()
    fig = compare.parity_figure(analysis.parity_data(models, ds, "energy"))
    points = [t for t in fig.data if t.name in models]
    assert all(isinstance(t, go.Scattergl) for t in fig.data) and [t.name for t in points] == ["perfect", "shifted"]
    perfect, shifted = points
    np.testing.assert_array_equal(perfect.customdata[:, 0], np.arange(20))
    np.testing.assert_allclose(perfect.x, ds.labels[FID].energy)
    np.testing.assert_allclose(perfect.y, perfect.x)
    np.testing.assert_allclose(np.asarray(shifted.y) - np.asarray(shifted.x), 0.05)
    diagonal = fig.data[0]
    assert diagonal.name == "y = x" and diagonal.mode == "lines" and diagonal.x[0] < min(perfect.x)
    assert fig.layout.xaxis.title.text == "reference energy (eV)"


def test_force_parity_subsamples_large_panels_and_keeps_indices_consistent():
    ds, models = two_models()
    data = analysis.parity_data(models, ds, "forces", units="kcal/mol")
    fig = compare.parity_figure(data, max_points=100)
    shifted = next(t for t in fig.data if t.name == "shifted")
    assert len(shifted.x) == 100 and shifted.customdata.shape == (100, 2)
    forces = ds.labels[FID].forces / 0.0433641  # eV/Å to kcal/mol/Å
    for (conf, atom), x in zip(shifted.customdata, shifted.x, strict=True):
        assert np.min(np.abs(forces[conf * 9 + atom] - x)) < 1e-3  # x is one component of that atom's force
    assert fig.layout.xaxis.title.text == "reference force component (kcal/mol/Å)"
    with pytest.raises(ValueError, match="no labelled values"):
        compare.parity_figure(data.iloc[:0])


def test_error_histograms_have_one_panel_per_element_and_the_errors_of_each():
    ds, models = two_models()
    table = analysis.atom_force_errors(models, ds)
    fig = compare.error_histogram_figure(table)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["C", "O", "H"]
    assert len(fig.data) == 6 and all(isinstance(t, go.Histogram) for t in fig.data)
    hydrogen_shifted = [t for t in fig.data if t.name == "shifted" and t.xaxis == "x3"][0]
    np.testing.assert_allclose(hydrogen_shifted.x, 0.2)  # every H is off by the shift
    assert len(hydrogen_shifted.x) == 120
    assert all(t.xbins.size == pytest.approx(0.2 / 40) and t.xbins.start == 0 for t in fig.data)


def test_learning_curve_figure_shows_mean_and_spread_over_seeds():
    table = pd.DataFrame(
        {
            "strategy": ["mf"] * 4 + ["delta"] * 2,
            "seed": [0, 1, 0, 1, 0, 0],
            "n_high": [10, 10, 100, 100, 10, 100],
            "force_rmse": [0.4, 0.6, 0.1, 0.3, 0.5, 0.2],
        }
    )
    fig = compare.learning_curve_figure(table, "force_rmse")
    mf, delta = fig.data
    assert mf.name == "mf" and list(mf.x) == [10, 100]
    np.testing.assert_allclose(mf.y, [0.5, 0.2])
    np.testing.assert_allclose(mf.error_y.array, [np.std([0.4, 0.6], ddof=1), np.std([0.1, 0.3], ddof=1)])
    assert mf.error_y.visible and not delta.error_y.visible
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    # a training LearningCurve's own table (index "budget", trainer column names) works too
    own = pd.DataFrame({"forces_rmse": [0.3, 0.1]}, index=pd.Index([25, 50], name="budget"))
    assert list(compare.learning_curve_figure(own, "force_rmse").data[0].y) == [0.3, 0.1]


def history_with_two_stages():
    epochs = np.arange(6)
    return pd.DataFrame(
        {
            "stage": ["pretrain"] * 3 + ["finetune"] * 3,
            "epoch": [0, 1, 2, 0, 1, 2],
            "train_loss": 1.0 / (epochs + 1),
            "val_loss": 1.2 / (epochs + 1),
            "train_forces_rmse[gfn2-xtb]": 0.5 / (epochs + 1),
            "val_forces_rmse[gfn2-xtb]": 0.6 / (epochs + 1),
            "val_energy_rmse[ccsd(t)/cc-pvdz]": [np.nan, np.nan, np.nan, 0.3, 0.2, 0.1],
            "val_energy_mae[ccsd(t)/cc-pvdz]": [np.nan, np.nan, np.nan, 0.2, 0.1, 0.05],
            "time": epochs * 0.1,
        }
    )


def test_training_curves_per_head_split_and_stage():
    history = history_with_two_stages()
    long = analysis.training_curves(history)
    assert set(long["quantity"]) == {"loss", "energy", "forces"}
    high = long[(long["head"] == "ccsd(t)/cc-pvdz") & (long["statistic"] == "rmse")]
    assert high["step"].tolist() == [3, 4, 5] and high["value"].tolist() == [0.3, 0.2, 0.1]
    fig = compare.training_curves_figure(history)
    names = sorted(t.name for t in fig.data)
    assert names == ["ccsd(t)/cc-pvdz (val)", "gfn2-xtb (train)", "gfn2-xtb (val)"]
    in_legend = [t.name for t in fig.data if t.showlegend is not False]
    assert sorted(in_legend) == names  # each head and split once in the legend, though drawn in both panels
    by_name = {t.name: t for t in fig.data}
    assert by_name["gfn2-xtb (train)"].line.dash == "dash" and by_name["gfn2-xtb (val)"].line.dash == "solid"
    np.testing.assert_allclose(by_name["gfn2-xtb (val)"].y, 0.6 / np.arange(1, 7))
    assert by_name["ccsd(t)/cc-pvdz (val)"].xaxis == "x" and by_name["gfn2-xtb (val)"].xaxis == "x2"
    assert by_name["gfn2-xtb (val)"].line.color != by_name["ccsd(t)/cc-pvdz (val)"].line.color
    stage_lines = [s for s in fig.layout.shapes if s.type == "line"]
    # one dotted line in each panel, where fine-tuning starts
    assert len(stage_lines) == 2 and {s.x0 for s in stage_lines} == {2.5}
    with pytest.raises(ValueError, match="no mae errors"):
        compare.training_curves_figure(history.drop(columns=["val_energy_mae[ccsd(t)/cc-pvdz]"]), statistic="mae")


def test_metrics_table_marks_the_best_model_of_each_column():
    ds, models = two_models()
    table = analysis.metrics(models, ds)
    styled = compare.metrics_table(table, ["model", "fidelity", "energy_mae", "force_rmse"])
    html = styled.to_html()
    assert "energy_mae (eV)" in html and "force_rmse (eV/Å)" in html
    styles = styled._compute().ctx  # {(row, column): [(property, value), ...]}
    bold = {cell for cell, props in styles.items() if ("font-weight", "bold") in props}
    assert bold == {(0, 2), (0, 3)}  # the perfect model (row 0) in both error columns
    assert compare.model_colors(["a", "b", "a"]) == {"a": compare.model_colors(["a"])["a"], "b": "#FF7F0E"}
