"""One fidelity vocabulary: every public function that takes a fidelity accepts every form of it.

A fidelity may be given as its canonical name, another spelling of it, a :class:`~workbench.data.Fidelity`, a list
of names or of Fidelity objects, or a dict keyed by either (the values kept). Each form must give exactly what the
canonical name gives: the same metrics numbers, frequencies, energies, labels, trained weights.
"""

import dataclasses
import types

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench import analysis
from workbench.data import Fidelity, canonical_fidelities, canonical_name
from workbench.models import build_model
from workbench.qm import Level

ONE = "mp2/cc-pvdz"  # the level a single-fidelity form names (has energies and forces)
MANY = ["gfn2-xtb", "mp2/cc-pvdz"]  # two of the dataset's three levels, so "all of them" is a different answer
HIGH = "ccsd(t)/cc-pvdz"
ALIAS = {"gfn2-xtb": "GFN2-xTB", "mp2/cc-pvdz": "mp2_dz", HIGH: "CCSD(T)/cc-pVDZ"}
PROPS = ("energy",)  # the value of the dict forms
TINY = dict(n_features=8, n_interactions=1, n_atom_layers=1, n_sensitivities=6, cutoff=4.0)
TRAIN = dict(model=TINY, max_epochs=1, batch_size=4, dtype="float64", background=False, progress=False)


# form -> (shape, selection built from the dataset and the level(s) a target uses)
FORMS = {
    "name": ("one", lambda ds, one, many: one),
    "alias": ("one", lambda ds, one, many: ALIAS[one]),
    "Fidelity": ("one", lambda ds, one, many: ds.fidelity(one)),
    "list of names": ("many", lambda ds, one, many: list(many)),
    "list of aliases": ("many", lambda ds, one, many: [ALIAS[n] for n in many]),
    "list of Fidelity": ("many", lambda ds, one, many: [ds.fidelity(n) for n in many]),
    "dict keyed by name": ("dict", lambda ds, one, many: {n: PROPS for n in many}),
    "dict keyed by Fidelity": ("dict", lambda ds, one, many: {ds.fidelity(n): PROPS for n in many}),
}
CANONICAL = {"one": "name", "many": "list of names", "dict": "dict keyed by name"}


@pytest.fixture(scope="module")
def ctx():
    """A dozen ethanol configurations with all three levels, and one tiny three-head model trained on them."""
    full = wb.datasets.builtin("ethanol")
    rows = np.flatnonzero(full.labels[HIGH].energy_mask & full.labels[ONE].forces_mask)[:12]
    ds = full.select(rows)
    model = wb.train(ds, finetune_lr_factor=None, **TRAIN).result()
    assert model.fidelities == ["gfn2-xtb", ONE, HIGH]  # every head kept
    return types.SimpleNamespace(ds=ds, model=model, atoms=ds.to_atoms(0, fidelity=ONE), expected={})


def _metrics(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=[c for c in ("eval_time_s", "time_per_configuration_ms") if c in table])


def _trained(m) -> tuple:
    return m.fidelities, m.settings["fidelities"], m.settings["target"], m.module.state_dict()


def _dataset(d) -> tuple:
    return sorted(d.labels), [dataclasses.astuple(lab) for _, lab in sorted(d.labels.items())], d.fidelity_info


def _as_list(x) -> list:
    return x if isinstance(x, list) else [x]


def _force_errors(fe) -> tuple:
    return fe.model, fe.fidelity, fe.error


def _scan(c, sel):
    return analysis.scan(c.model, c.atoms, [1.40, 1.55], bond=(0, 1), fidelity=sel).energies


def _label(c, sel):
    return wb.label(c.ds.select([0, 1]), level=sel, properties=("energy",), background=False).result().labels


# target -> (shapes it accepts, call(ctx, selection) -> something comparable)
TARGETS = {
    "wb.train": (
        ("one", "many", "dict"),
        lambda c, sel: _trained(wb.train(c.ds, fidelities=sel, **TRAIN).result()),
    ),
    "wb.train target=": (("one",), lambda c, sel: _trained(wb.train(c.ds, target=sel, **TRAIN).result())),
    "analysis.metrics fidelities=": (
        ("one", "many"),
        lambda c, sel: _metrics(analysis.metrics(c.model, c.ds, fidelities=sel)),
    ),
    "analysis.metrics (model, fidelity)": (
        ("one",),
        lambda c, sel: _metrics(analysis.metrics((c.model, sel), c.ds)),
    ),
    "analysis.metrics (calculator, fidelity)": (
        ("one",),
        lambda c, sel: _metrics(analysis.metrics([(c.model.calculator(fidelity=ONE), sel)], c.ds)),
    ),
    "analysis.metrics yardsticks=": (
        ("one", "many"),
        lambda c, sel: _metrics(analysis.metrics(c.model, c.ds, fidelities=HIGH, yardsticks=sel)),
    ),
    "analysis.configuration_errors": (
        ("one", "many"),
        lambda c, sel: analysis.configuration_errors(c.model, c.ds, fidelities=sel),
    ),
    "analysis.parity_data": (("one", "many"), lambda c, sel: analysis.parity_data(c.model, c.ds, fidelities=sel)),
    "analysis.disagreement": (("many",), lambda c, sel: analysis.disagreement(c.model, c.ds, fidelities=sel)),
    "analysis.evaluate": (
        ("one", "many"),
        lambda c, sel: [(e.label, e.energy) for e in analysis.evaluate(c.model, c.ds, fidelities=sel)],
    ),
    "analysis.predictors": (
        ("one", "many"),
        lambda c, sel: [(p.label, p.fidelity) for p in analysis.predictors(c.model, fidelity=sel)],
    ),
    "analysis.force_errors (dataset)": (
        ("one",),
        lambda c, sel: _force_errors(analysis.force_errors(c.model, c.ds, 3, fidelity=sel)),
    ),
    "analysis.force_errors (atoms)": (
        ("one",),
        lambda c, sel: _force_errors(analysis.force_errors(c.model, c.atoms, fidelity=sel)),
    ),
    "analysis.atom_force_errors": (
        ("one", "many"),
        lambda c, sel: analysis.atom_force_errors(c.model, c.ds, fidelities=sel),
    ),
    "analysis.force_error_statistics": (
        ("one", "many"),
        lambda c, sel: analysis.force_error_statistics(c.model, c.ds, fidelities=sel),
    ),
    "analysis.vibrations": (
        ("one", "many"),
        lambda c, sel: [
            (v.name, v.frequencies) for v in _as_list(analysis.vibrations(c.model, c.atoms, fidelity=sel, relax=False))
        ],
    ),
    "analysis.scan": (("one", "many"), _scan),
    "analysis.md_stability": (
        ("one",),
        lambda c, sel: analysis.md_stability(c.model, c.atoms, fidelity=sel, n_steps=4, record_every=2).potential,
    ),
    "TrainedModel.calculator": (
        ("one",),
        lambda c, sel: c.model.calculator(fidelity=sel).get_potential_energy(c.atoms.copy()),
    ),
    "TrainedModel.evaluate": (("one",), lambda c, sel: c.model.evaluate(c.ds, fidelity=sel, reference=sel)),
    "analysis.learning_curve": (
        ("one",),
        lambda c, sel: analysis.learning_curve({len(c.ds): c.model}, c.ds, fidelity=sel).drop(
            columns=["eval_time_s", "time_per_configuration_ms"]
        ),
    ),
    "TrainedModel.predict": (("one",), lambda c, sel: c.model.predict(c.ds, fidelity=sel)),
    "Dataset.fidelity": (("one",), lambda c, sel: c.ds.fidelity(sel)),
    "Dataset.energy": (("one",), lambda c, sel: c.ds.energy(sel)),
    "Dataset.forces": (("one",), lambda c, sel: c.ds.forces(sel)),
    "Dataset.keep_labels": (("one",), lambda c, sel: _dataset(c.ds.keep_labels(sel, [1, 2], ("forces",)))),
    "Dataset.drop_fidelity": (("one",), lambda c, sel: _dataset(c.ds.drop_fidelity(sel))),
    "Dataset.set_rank": (("one",), lambda c, sel: _dataset(c.ds.select(slice(None)).set_rank(sel, 99.0))),
    "Dataset.to_atoms": (
        ("one",),
        lambda c, sel: c.ds.to_atoms(2, fidelity=sel).get_forces(),
    ),
    "Dataset.atomic_references": (("one", "many"), lambda c, sel: c.ds.atomic_references(sel)),
    "build_model fidelities=": (
        ("one", "many"),
        lambda c, sel: build_model("hipnn", [1, 6, 8], fidelities=sel, **TINY).fidelities,
    ),
    "qm.Level": (("one",), lambda c, sel: Level(sel).key),
    "wb.label level=": (("one",), _label),
}

#: Targets whose single form names another level: labelling at MP2 would take minutes, at xTB milliseconds.
OWN_LEVEL = {"qm.Level": "gfn2-xtb", "wb.label level=": "gfn2-xtb"}
CASES = [(t, f) for t, (shapes, _) in TARGETS.items() for f, (shape, _) in FORMS.items() if shape in shapes]


def assert_same(got, expected, where=""):
    """Equal, to the last bit where the computation is the same (every form resolves to the same names first)."""
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected)
    elif isinstance(expected, pd.Series):
        pd.testing.assert_series_equal(got, expected)
    elif isinstance(expected, dict):
        assert list(got) == list(expected), where
        for key in expected:
            assert_same(got[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert type(got) is type(expected) and len(got) == len(expected), where
        for k, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_same(a, b, f"{where}[{k}]")
    elif isinstance(expected, (np.ndarray, float)) or hasattr(expected, "numpy"):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected), err_msg=where)
    elif dataclasses.is_dataclass(expected):
        assert_same(dataclasses.astuple(got), dataclasses.astuple(expected), where)
    else:
        assert got == expected, where


@pytest.mark.parametrize("target, form", CASES, ids=[f"{t} | {f}" for t, f in CASES])
def test_every_form_of_a_fidelity_gives_what_its_canonical_name_gives(ctx, target, form):
    _, call = TARGETS[target]
    one, many = OWN_LEVEL.get(target, ONE), MANY
    shape, make = FORMS[form]
    if (target, shape) not in ctx.expected:
        ctx.expected[target, shape] = call(ctx, FORMS[CANONICAL[shape]][1](ctx.ds, one, many))
    assert_same(call(ctx, make(ctx.ds, one, many)), ctx.expected[target, shape], target)


def test_the_forms_resolve_to_canonical_names(ctx):
    ds = ctx.ds
    for form, (shape, make) in FORMS.items():
        expected = {"one": [ONE], "many": MANY, "dict": {n: PROPS for n in MANY}}[shape]
        assert canonical_fidelities(make(ds, ONE, MANY), ds.fidelities) == expected, form
    assert canonical_fidelities(None) is None
    assert canonical_fidelities(f for f in ["xtb", ds.fidelity(HIGH)]) == ["gfn2-xtb", HIGH]
    assert canonical_name(ds.fidelities[0]) == "gfn2-xtb"


def test_a_calculator_keeps_the_fidelity_it_is_paired_with(ctx):
    calc = ctx.model.calculator(fidelity=ONE)
    fid = ctx.ds.fidelity(ONE)
    assert [p.fidelity for p in analysis.predictors((calc, fid))] == [ONE]
    assert [p.fidelity for p in analysis.predictors([(calc, fid)])] == [ONE]
    assert [p.fidelity for p in analysis.predictors(calc, fidelity=fid)] == [ONE]
    table = analysis.metrics([(calc, fid)], ctx.ds)
    assert table["head"].tolist() == [ONE] and table["fidelity"].tolist() == [ONE]  # judged at its own level only


def test_unknown_fidelities_name_what_was_passed_and_what_there_is(ctx):
    ds, model = ctx.ds, ctx.model
    present = "['gfn2-xtb', 'mp2/cc-pvdz', 'ccsd(t)/cc-pvdz']"
    spelled = " (given as 'B3LYP/6-31G*')"
    for call, given in (
        (lambda: wb.train(ds, fidelities=["xtb", "B3LYP/6-31G*"], **TRAIN), spelled),
        (lambda: wb.train(ds, fidelities={Fidelity.parse("b3lyp/6-31g*"): PROPS}, **TRAIN), ""),
        (lambda: analysis.metrics(model, ds, fidelities="B3LYP/6-31G*"), spelled),
        (lambda: ds.to_atoms(0, fidelity="B3LYP/6-31G*"), spelled),
        (lambda: ds.keep_labels("b3lyp/6-31g*"), ""),
    ):
        with pytest.raises(KeyError) as info:
            call()
        assert f"no fidelity 'b3lyp/6-31g*'{given} in this dataset; present: {present}" in str(info.value)
    for call in (
        lambda: analysis.vibrations(model, ctx.atoms, fidelity=Fidelity.parse("b3lyp/6-31g*"), relax=False),
        lambda: model.calculator(fidelity="b3lyp/6-31g*"),
    ):
        with pytest.raises(KeyError, match=r"no fidelity 'b3lyp/6-31g\*' among the model's heads; present: \["):
            call()
    with pytest.raises(TypeError, match="got int 3"):
        analysis.metrics(model, ds, fidelities=3)
    with pytest.raises(ValueError, match=r"\['gfn2-xtb'\] are named twice"):
        wb.train(ds, fidelities=["xtb", "gfn2-xtb"], **TRAIN)
