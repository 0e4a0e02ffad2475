"""The dataset figures carry the numbers of the data they show."""

import numpy as np
import pytest

import workbench as wb
from workbench.viz import (
    RESIDUAL_AXIS,
    coverage_figure,
    energy_distribution_figure,
    fidelity_colors,
    highlight_points,
    labels_table,
    per_atom_residuals,
)


@pytest.fixture(scope="module")
def ani():
    return wb.datasets.builtin("ani1x-sample")


@pytest.fixture(scope="module")
def md17():
    return wb.datasets.builtin("md17-ethanol-sample")


def independent_residuals(ds, fidelity):
    """Per-atom energy minus a least-squares per-element fit, computed here from the raw arrays (eV/atom)."""
    energy, mask = ds.energy(fidelity)
    elements = np.unique(ds.numbers)
    comp = np.array([[np.sum(ds.numbers[ds.ptr[i] : ds.ptr[i + 1]] == z) for z in elements] for i in range(len(ds))])
    coef, *_ = np.linalg.lstsq(comp[mask].astype(float), energy[mask], rcond=None)
    residual = np.full(len(ds), np.nan)
    residual[mask] = energy[mask] - comp[mask] @ coef
    return residual / np.diff(ds.ptr)


def test_coverage_figure_counts_every_label(ani):
    fig = coverage_figure(ani)
    heat = fig.data[0]
    assert list(heat.y) == ani.fidelity_names
    assert list(heat.x) == ["energy", "forces"]
    counts = np.asarray(heat.customdata)
    for row, name in enumerate(ani.fidelity_names):
        energy_mask = ani.labels[name].energy_mask
        forces_mask = ani.labels[name].forces_mask
        assert counts[row].tolist() == [energy_mask.sum(), forces_mask.sum()]
    np.testing.assert_allclose(np.asarray(heat.z), counts / len(ani))
    # ANI-1x gives ωB97x forces for all 8 conformations and no forces at the coupled-cluster level.
    row = {name: k for k, name in enumerate(heat.y)}
    assert counts[row["wb97x/6-31g*"]].tolist() == [8, 8]
    assert counts[row["ccsd(t)/cbs"]][1] == 0 and counts[row["ccsd(t)/cbs"]][0] < 8
    assert heat.text[row["ccsd(t)/cbs"]][0] == str(counts[row["ccsd(t)/cbs"]][0])
    assert "8 configurations" in fig.layout.title.text


def test_coverage_figure_of_a_single_level(md17):
    heat = coverage_figure(md17).data[0]
    assert list(heat.y) == ["pbe+vdw-ts"]
    assert np.asarray(heat.customdata).tolist() == [[20, 20]]


def test_energy_distributions_show_residuals_per_atom(ani):
    fig = energy_distribution_figure(ani)
    violins = [t for t in fig.data if t.type == "violin"]
    assert [v.name for v in violins] == ani.fidelity_names
    for violin in violins:
        expected = independent_residuals(ani, violin.name)
        expected = expected[np.isfinite(expected)]
        np.testing.assert_allclose(np.sort(violin.x), np.sort(expected), atol=1e-9)
        assert len(violin.x) == ani.labels[violin.name].energy_mask.sum()
    # Subtracting references brings levels whose totals differ by ~100 eV onto a common scale.
    totals = [ani.energy(f)[0][0] for f in ani.fidelity_names]
    assert max(totals) - min(totals) > 50
    assert max(abs(x) for v in violins for x in v.x) < 1.0
    assert fig.layout.xaxis.title.text == RESIDUAL_AXIS and "eV/atom" in RESIDUAL_AXIS
    assert fig.data[-1].name == "highlight" and len(fig.data[-1].x) == 0


def test_energy_distribution_marks_the_highlighted_configuration(ani):
    residuals = per_atom_residuals(ani)
    fig = energy_distribution_figure(ani, residuals, highlight=4)
    marker = fig.data[-1]
    # Configuration 4 has energies only at the two ωB97x levels.
    assert list(marker.y) == ["wb97x/6-31g*", "wb97x/def2-tzvpp"]
    np.testing.assert_allclose(marker.x, [independent_residuals(ani, f)[4] for f in marker.y])
    assert marker.name == "configuration 4"
    x, y = highlight_points(residuals, 0, ani.fidelity_names)
    assert y == ani.fidelity_names and len(x) == len(y)


def test_labels_table_of_one_configuration(ani):
    table = labels_table(ani, 2)
    assert list(table.index) == ani.fidelity_names
    for name in ani.fidelity_names:
        energy, mask = ani.energy(name)
        assert table.loc[name, "energy (eV)"] == pytest.approx(energy[2])
        assert table.loc[name, "energy − refs (eV)"] == pytest.approx(independent_residuals(ani, name)[2] * 14)
    forces = ani.labels["wb97x/6-31g*"].forces[ani.ptr[2] : ani.ptr[3]].astype(float)
    assert table.loc["wb97x/6-31g*", "max |F| (eV/Å)"] == pytest.approx(np.sqrt((forces**2).sum(1)).max())
    assert table.loc["wb97x/6-31g*", "RMS F (eV/Å)"] == pytest.approx(np.sqrt((forces**2).mean()))
    assert np.isnan(table.loc["hf/cc-pvdz", "max |F| (eV/Å)"])
    missing = labels_table(ani, 4)
    assert np.isnan(missing.loc["ccsd(t)/cbs", "energy (eV)"])
    assert labels_table(ani, -1).loc["wb97x/6-31g*", "energy (eV)"] == pytest.approx(ani.energy("wb97x/6-31g*")[0][7])
    with pytest.raises(IndexError, match="out of range"):
        labels_table(ani, 8)


def test_fidelity_colors_are_distinct_and_stable(ani):
    colors = fidelity_colors(ani.fidelity_names)
    assert len(set(colors.values())) == len(ani.fidelity_names)
    assert fidelity_colors(ani.fidelity_names) == colors
    assert len(fidelity_colors(["gfn2-xtb"])) == 1 and fidelity_colors([]) == {}


def test_energy_distribution_samples_large_levels(md17):
    fig = energy_distribution_figure(md17, max_points=5)
    (violin,) = [t for t in fig.data if t.type == "violin"]
    full = per_atom_residuals(md17)["pbe+vdw-ts"].to_numpy()
    assert len(violin.x) == 5 and set(violin.x) <= set(full)
    assert "5 of 20" in violin.hovertemplate
    assert len(energy_distribution_figure(md17).data[0].x) == 20
