import pytest

from workbench.data.fidelity import Fidelity, canonical_fidelities, canonical_name


@pytest.mark.parametrize(
    "text, name",
    [
        ("B3LYP/6-31G*", "b3lyp/6-31g*"),
        ("xtb", "gfn2-xtb"),
        ("GFN2-xTB", "gfn2-xtb"),
        ("wb97x_dz", "wb97x/6-31g*"),
        ("wb97x_tz", "wb97x/def2-tzvpp"),
        ("ccsd(t)_cbs", "ccsd(t)/cbs"),
        ("CCSD(T)/cc-pVDZ", "ccsd(t)/cc-pvdz"),
        ("mp2_dz", "mp2/cc-pvdz"),
        ("ωB97x/6-31G(d)", "wb97x/6-31g*"),
        ("ccsd_t/ccpvdz", "ccsd(t)/cc-pvdz"),
    ],
)
def test_parse_gives_canonical_names(text, name):
    assert Fidelity.parse(text).name == name
    assert canonical_name(name) == name  # canonical names are fixed points


def test_default_rank_follows_the_method_hierarchy():
    order = ["gfn2-xtb", "hf/sto-3g", "pbe+vdw-ts", "b3lyp/6-31g*", "mp2/cc-pvdz", "ccsd(t)/cc-pvdz", "ccsd(t)/cbs"]
    ranks = [Fidelity.parse(n).rank for n in order]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    # Within one method a larger basis ranks higher.
    assert Fidelity.parse("wb97x/def2-tzvpp").rank > Fidelity.parse("wb97x/6-31g*").rank


def test_parts_and_program():
    f = Fidelity.parse("B3LYP/def2-SVP")
    assert (f.method, f.basis, f.program) == ("b3lyp", "def2-svp", None)
    x = Fidelity.parse("gfn1-xtb")
    assert (x.method, x.basis, x.program) == ("gfn1-xtb", None, "tblite")
    assert x.with_rank(99).rank == 99 and x.rank != 99


def test_empty_name_is_refused():
    with pytest.raises(ValueError):
        Fidelity.parse("  ")


def test_a_selection_in_any_form_becomes_canonical_names():
    xtb, cc = Fidelity.parse("gfn2-xtb"), Fidelity.parse("ccsd(t)/cc-pvdz")
    assert canonical_fidelities(None) is None
    assert canonical_fidelities("xtb") == canonical_fidelities(xtb) == ["gfn2-xtb"]
    assert canonical_fidelities(("GFN2-xTB", cc)) == canonical_fidelities([xtb, "ccsd_t/ccpvdz"]) == [xtb.name, cc.name]
    assert canonical_fidelities({cc: ("energy",), "xtb": None}) == {cc.name: ("energy",), "gfn2-xtb": None}
    assert canonical_fidelities([]) == []


def test_a_selection_outside_what_is_available_names_both():
    with pytest.raises(KeyError, match=r"no fidelity 'b3lyp/6-31g\*' \(given as 'B3LYP/6-31G\*'\) in this dataset; "):
        canonical_fidelities(["xtb", "B3LYP/6-31G*"], ["gfn2-xtb", Fidelity.parse("mp2/cc-pvdz")], "in this dataset")
    with pytest.raises(KeyError, match=r"present: \['gfn2-xtb', 'mp2/cc-pvdz'\]"):
        canonical_name(Fidelity.parse("b3lyp/6-31g*"), ["xtb", "mp2/cc-pvdz"])
    with pytest.raises(ValueError, match="named twice"):
        canonical_fidelities({"xtb": 1, "gfn2-xtb": 2})
    with pytest.raises(TypeError, match="got float 1.5"):
        canonical_fidelities(1.5)
    with pytest.raises(TypeError, match="got NoneType None"):
        canonical_fidelities([None])
