"""3D views of configurations with nglview (ball-and-stick, white background, orthographic camera)."""

from __future__ import annotations

import io

import nglview
from ase import Atoms

#: Size of a structure view in a panel (CSS lengths).
VIEW_WIDTH, VIEW_HEIGHT = "440px", "360px"


def pdb_string(atoms: Atoms) -> str:
    """The configuration as PDB text (Å), moved so its centroid is at the origin.

    Centring keeps every configuration inside the region the camera was fitted to, so swapping one
    structure for another never leaves the new one outside the view's clipping planes.
    """
    from ase.io import write

    buffer = io.StringIO()
    positions = atoms.positions - atoms.positions.mean(axis=0)
    # Only positions and elements matter for the view; a bare copy keeps the writer away from labels.
    write(buffer, Atoms(numbers=atoms.numbers, positions=positions), format="proteindatabank")
    return buffer.getvalue()


def structure_view(atoms: Atoms, width: str = VIEW_WIDTH, height: str = VIEW_HEIGHT) -> nglview.NGLWidget:
    """An nglview widget showing ``atoms`` as balls and sticks (bonds guessed from distances)."""
    view = nglview.NGLWidget(width=width, height=height)
    view.add_structure(nglview.TextStructure(pdb_string(atoms), ext="pdb"), default_representation=False)
    view.add_ball_and_stick(aspectRatio=2.2, radiusScale=1.0)
    view.background = "white"
    view.layout.width = width
    view.layout.height = height
    # NGL adds clipDist (10 Å by default) to the camera distance that fits a structure, which leaves a
    # small molecule a speck in the middle; 2 Å fits it with a margin.
    view.stage.set_parameters(clip_dist=2)
    view.center()
    return view


def replace_structure(view: nglview.NGLWidget, atoms: Atoms, recenter: bool = True) -> None:
    """Show ``atoms`` in an existing view in place of its first structure, keeping its representations.

    Swapping the structure (rather than building a new widget) keeps the WebGL context and, with
    ``recenter=False``, the camera the user chose, so stepping through an MD trajectory does not jump.
    """
    # nglview's frontend method for this ("replaceStructure") has no public Python wrapper in 4.0; the
    # browser test checks that it keeps drawing.
    view._remote_call(
        "replaceStructure", target="Widget", args=[{"data": pdb_string(atoms), "ext": "pdb", "params": {}}]
    )
    if recenter:
        view.center()
