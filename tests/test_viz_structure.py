"""3D views: the structure that reaches nglview is the configuration asked for."""

import numpy as np
from ase.build import molecule

from workbench.viz import pdb_string, replace_structure, structure_view


def atoms_in_pdb(text):
    """(elements, positions in Å) of the ATOM/HETATM records of a PDB text."""
    lines = [line for line in text.splitlines() if line.startswith(("ATOM", "HETATM"))]
    elements = [line[76:78].strip() for line in lines]
    positions = np.array([[float(line[30:38]), float(line[38:46]), float(line[46:54])] for line in lines])
    return elements, positions


def messages(view, name):
    return [m for m in view._ngl_msg_archive if m["methodName"] == name]


def test_pdb_string_keeps_elements_and_shape_and_centres():
    ethanol = molecule("CH3CH2OH")
    ethanol.positions += [5.0, -3.0, 2.0]
    elements, positions = atoms_in_pdb(pdb_string(ethanol))
    assert elements == ethanol.get_chemical_symbols()
    np.testing.assert_allclose(positions.mean(axis=0), 0.0, atol=2e-3)
    # Interatomic distances survive (PDB keeps 3 decimals).
    d_pdb = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    np.testing.assert_allclose(d_pdb, ethanol.get_all_distances(), atol=3e-3)


def test_structure_view_loads_the_molecule_as_balls_and_sticks():
    water = molecule("H2O")
    view = structure_view(water)
    (load,) = messages(view, "loadFile")
    elements, _ = atoms_in_pdb(load["args"][0]["data"])
    assert elements == ["O", "H", "H"]
    representations = messages(view, "addRepresentation")
    assert [m["args"][0] for m in representations] == ["ball+stick"]
    assert any(m["kwargs"].get("clipDist") == 2 for m in messages(view, "setParameters"))
    assert view.layout.width == "440px"


def test_replace_structure_sends_the_new_configuration():
    view = structure_view(molecule("H2O"))
    benzene = molecule("C6H6")
    replace_structure(view, benzene, recenter=False)
    (replace,) = messages(view, "replaceStructure")
    elements, _ = atoms_in_pdb(replace["args"][0]["data"])
    assert elements == benzene.get_chemical_symbols()
    assert replace["args"][0]["ext"] == "pdb"
