"""Internal coordinates to scan along: bond lengths, angles, dihedrals and normal modes.

Bonds, angles and dihedrals are set with ASE's own setters (``Atoms.set_distance``, ``set_angle``,
``set_dihedral``), moving a whole fragment: the bonded graph (ASE's natural covalent radii) is cut at the bond
the coordinate turns or stretches, and the smaller side moves, so that a methyl rotor turns as a unit and the
rest of the molecule stays put. In a ring the cut leaves one piece; then only the last atom moves. Each frame
is built from the starting geometry, so no error accumulates along a scan. Units: Å and degrees; a normal-mode
coordinate is the length (Å) of the Cartesian displacement along the unit-norm mode vector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from ..harmonic import BOND_SCALE, bond_graph, bonds  # noqa: F401  (re-exported: coordinates are cut at bonds)

KINDS = {"bond": 2, "angle": 3, "dihedral": 4, "mode": 0}
UNITS = {"bond": "Å", "angle": "°", "dihedral": "°", "mode": "Å"}


def _superposed_rmsd(a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> float:
    """Weighted RMSD (Å) of ``a`` on ``b`` after the best proper rotation about their weighted centres (Kabsch,
    Acta Cryst. A32, 922 (1976))."""
    w = weights[:, None] / weights.sum()
    a = a - (w * a).sum(axis=0)
    b = b - (w * b).sum(axis=0)
    u, s, vt = np.linalg.svd((w * a).T @ b)
    s[-1] *= np.sign(np.linalg.det(u @ vt))
    return float(np.sqrt(max(float(np.sum(w * (a**2 + b**2))) - 2.0 * float(s.sum()), 0.0)))


def atom_correspondence(atoms: Atoms, reference: Atoms, limit: int = 100_000) -> np.ndarray:
    """``order`` such that atom ``k`` of ``atoms`` is atom ``order[k]`` of ``reference``: same element, same bonds
    (:func:`bond_graph`) atom for atom. Of the orders the bonds allow (a methyl's three hydrogens can be numbered
    six ways), the one whose geometry superimposes best on ``atoms`` (mass-weighted, after the best rotation), at
    most ``limit`` of them tried. ValueError when the two are not the same molecule."""
    z, zr = np.asarray(atoms.numbers), np.asarray(reference.numbers)
    if sorted(z.tolist()) != sorted(zr.tolist()):
        raise ValueError(
            f"not the same molecule: {atoms.get_chemical_formula()} and {reference.get_chemical_formula()}"
        )
    adj, adj_ref = bond_graph(atoms), bond_graph(reference)
    deg, deg_ref = adj.sum(axis=1), adj_ref.sum(axis=1)
    n = len(z)
    # Visit atoms bonded to those already placed first, so that each new atom is pinned by its bonds.
    visit: list[int] = []
    for root in sorted(range(n), key=lambda i: (-int(z[i]), -int(deg[i]))):
        if root in visit:
            continue
        queue = [root]
        while queue:
            i = queue.pop(0)
            if i not in visit:
                visit.append(i)
                queue += [int(j) for j in np.flatnonzero(adj[i]) if j not in visit]
    candidates = [[k for k in range(n) if zr[k] == z[i] and deg_ref[k] == deg[i]] for i in range(n)]
    weights = atoms.get_masses()
    order = np.full(n, -1)
    used = np.zeros(n, dtype=bool)
    best: tuple[float, np.ndarray | None] = (np.inf, None)
    tried = 0

    def place(depth: int) -> None:
        nonlocal best, tried
        if tried >= limit:
            return
        if depth == n:
            tried += 1
            rmsd = _superposed_rmsd(reference.positions[order], atoms.positions, weights)
            if rmsd < best[0]:
                best = (rmsd, order.copy())
            return
        i = visit[depth]
        placed = np.array(visit[:depth], dtype=int)
        for k in candidates[i]:
            if not used[k] and np.array_equal(adj[i, placed], adj_ref[k, order[placed]]):
                order[i], used[k] = k, True
                place(depth + 1)
                order[i], used[k] = -1, False

    place(0)
    if best[1] is None:
        raise ValueError(
            f"not the same molecule: {atoms.get_chemical_formula()} is bonded differently from the reference "
            f"(bonds {bonds(atoms)} against {bonds(reference)})"
        )
    return best[1]


def side_of(adjacency: np.ndarray, cut: tuple[int, int], start: int) -> np.ndarray:
    """Atoms reachable from ``start`` without crossing the bond ``cut``, as a sorted index array."""
    adj = adjacency.copy()
    a, b = cut
    adj[a, b] = adj[b, a] = False
    seen = {start}
    todo = [start]
    while todo:
        k = todo.pop()
        for m in np.flatnonzero(adj[k]):
            if m not in seen:
                seen.add(int(m))
                todo.append(int(m))
    return np.array(sorted(seen), dtype=int)


@dataclass
class Coordinate:
    """One scan coordinate: ``kind`` (``"bond"``, ``"angle"``, ``"dihedral"``, ``"mode"``), the atoms that define
    it (as given), and the values to visit (Å, degrees, or Å along a mode).

    :meth:`prepare` decides which atoms move for a given molecule; :meth:`apply` sets the coordinate of a copy.
    """

    kind: str
    atoms: tuple[int, ...]
    values: np.ndarray
    vector: np.ndarray | None = None
    moving: np.ndarray | None = field(default=None, repr=False)
    order: tuple[int, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown coordinate {self.kind!r}; choose from {sorted(KINDS)}")
        self.atoms = tuple(int(i) for i in self.atoms)
        if self.kind != "mode" and len(self.atoms) != KINDS[self.kind]:
            raise ValueError(f"a {self.kind} is defined by {KINDS[self.kind]} atoms, got {self.atoms}")
        if len(set(self.atoms)) != len(self.atoms):
            raise ValueError(f"the atoms of a {self.kind} must be distinct, got {self.atoms}")
        self.values = np.asarray(list(self.values) if isinstance(self.values, range) else self.values, dtype=float)
        if self.values.ndim != 1 or len(self.values) < 2:
            raise ValueError(f"a scan needs at least two values along the {self.kind}, got {self.values!r}")
        if self.kind == "mode":
            if self.vector is None:
                raise ValueError("a normal-mode coordinate needs the mode's displacement vector")
            v = np.asarray(self.vector, dtype=float).reshape(-1, 3)
            self.vector = v / np.linalg.norm(v)

    @property
    def unit(self) -> str:
        return UNITS[self.kind]

    @property
    def name(self) -> str:
        """Axis title, e.g. ``"dihedral 0-1-2-3 (°)"``."""
        if self.kind == "mode":
            return f"normal-mode displacement ({self.unit})"
        return f"{self.kind} {'-'.join(map(str, self.atoms))} ({self.unit})"

    @property
    def periodic(self) -> bool:
        """True for a dihedral scan whose evenly spaced values close the full turn."""
        if self.kind != "dihedral" or len(self.values) < 3:
            return False
        step = np.diff(self.values)
        return bool(np.allclose(step, step[0]) and abs(abs(self.values[-1] + step[0] - self.values[0]) - 360) < 1e-6)

    def prepare(self, atoms: Atoms) -> Coordinate:
        """Choose the moving fragment for ``atoms`` (the smaller side of the cut bond); returns self."""
        n = len(atoms)
        if self.kind == "mode":
            if self.vector.shape != (n, 3):
                raise ValueError(f"the mode vector has {len(self.vector)} atoms, the molecule {n}")
            return self
        if max(self.atoms) >= n or min(self.atoms) < -n:
            raise IndexError(f"atoms {self.atoms} out of range for a molecule of {n} atoms")
        adj = bond_graph(atoms)
        order = self.atoms
        # The coordinate is unchanged when its atoms are read backwards: move whichever end is smaller.
        candidates = []
        for seq in (order, order[::-1]):
            cut = (seq[0], seq[1]) if self.kind == "bond" else (seq[1], seq[2])
            fixed = seq[:1] if self.kind == "bond" else seq[:2]
            side = side_of(adj, cut, cut[1])
            if any(f in side for f in fixed):  # a ring: the cut does not split the molecule
                side = np.array([seq[-1]])
                candidates.append((1, 1, seq, side))
            else:
                candidates.append((0, len(side), seq, np.union1d(side, [seq[-1]])))
        _, _, self.order, self.moving = min(candidates, key=lambda c: (c[0], c[1]))
        return self

    def measure(self, atoms: Atoms) -> float:
        """The coordinate's value in ``atoms`` (Å or degrees; for a mode, the projection of the displacement
        from nothing is undefined, so NaN)."""
        if self.kind == "bond":
            return float(atoms.get_distance(*self.atoms))
        if self.kind == "angle":
            return float(atoms.get_angle(*self.atoms))
        if self.kind == "dihedral":
            return float(atoms.get_dihedral(*self.atoms))
        return float("nan")

    def apply(self, atoms: Atoms, value: float) -> Atoms:
        """A copy of ``atoms`` with the coordinate set to ``value`` (call :meth:`prepare` first)."""
        out = atoms.copy()
        out.calc = None
        if self.kind == "mode":
            out.positions = atoms.positions + float(value) * self.vector
            return out
        if self.moving is None:
            self.prepare(atoms)
        idx = [int(i) for i in self.moving]
        seq = self.order
        if self.kind == "bond":
            out.set_distance(seq[0], seq[1], float(value), fix=0, indices=idx)
        elif self.kind == "angle":
            out.set_angle(seq[0], seq[1], seq[2], float(value), indices=idx)
        else:
            out.set_dihedral(seq[0], seq[1], seq[2], seq[3], float(value), indices=idx)
        return out


def coordinate_from(kind: str, spec, values) -> Coordinate:
    """A :class:`Coordinate` from a keyword of :func:`~workbench.analysis.pes.scan`: atom indices for a bond,
    angle or dihedral; for ``mode`` a displacement vector ``(n, 3)`` or ``(vibrations_result, k)``."""
    if kind == "mode":
        if isinstance(spec, tuple) and len(spec) == 2 and hasattr(spec[0], "modes"):
            result, k = spec
            return Coordinate("mode", (), values, vector=result.modes[int(k)])
        return Coordinate("mode", (), values, vector=np.asarray(spec, dtype=float))
    return Coordinate(kind, tuple(spec), values)
