"""Cartesian tensors of neighbour directions and the rotation invariants built from them.

Moments: for unit vectors ``u`` (``(..., 3)``), ``direction_powers`` gives ``u``, ``u⊗u`` and
``u⊗u⊗u`` flattened to ``3``, ``9`` and ``27`` components. Sums of these over neighbours, weighted
by radial functions, are the Gaussian moments of GM-NN and the tensor sensitivities of HIP-NN-TS.

Invariants of one vector ``v``, one symmetric traceless matrix ``A`` and one symmetric traceless
rank-3 tensor ``T`` (all indices contracted, so unchanged by rotations): :data:`INVARIANTS` lists a
functionally independent set of products of at most four factors, in the spirit of Allen, Shinkle,
Bujack, Lubbers, "Optimal invariant bases for atomistic machine learning", arXiv:2503.23515. Its
size is the count of degrees of freedom less the three of a rotation: 1 for ``v`` alone,
``3 + 5 - 3 = 5`` with ``A``, ``3 + 5 + 7 - 3 = 12`` with ``T``; with the scalar (order-0) moment,
13 invariants for factors up to order 3. Independence is checked by the rank of their Jacobian in
the tests.
"""

from __future__ import annotations

import torch


def direction_powers(u: torch.Tensor, max_order: int) -> list[torch.Tensor]:
    """``[u, u⊗u, u⊗u⊗u][:max_order]`` flattened over the tensor indices: ``(..., 3**l)``."""
    out = [u]
    for _ in range(1, max_order):
        out.append((out[-1][..., :, None] * u[..., None, :]).flatten(-2))
    return out


def deviator2(m: torch.Tensor) -> torch.Tensor:
    """Traceless part ``M - tr(M) I / 3`` of symmetric matrices ``(..., 3, 3)``."""
    trace = m.diagonal(dim1=-2, dim2=-1).sum(-1)
    return m - trace[..., None, None] * torch.eye(3, dtype=m.dtype, device=m.device) / 3.0


def deviator3(t: torch.Tensor) -> torch.Tensor:
    """Traceless part of symmetric rank-3 tensors ``(..., 3, 3, 3)``:
    ``T_abc - (d_ab t_c + d_ac t_b + d_bc t_a) / 5`` with ``t_c = T_aac``."""
    tr = t.diagonal(dim1=-3, dim2=-2).sum(-1)  # (..., 3): t_c
    eye = torch.eye(3, dtype=t.dtype, device=t.device)
    sym = (
        eye[:, :, None] * tr[..., None, None, :]
        + eye[:, None, :] * tr[..., None, :, None]
        + eye[None, :, :] * tr[..., :, None, None]
    )
    return t - sym / 5.0


# name -> (highest tensor order used, function of (v, A, T)); v (..., 3), A (..., 3, 3), T (..., 3, 3, 3).
INVARIANTS = {
    "v.v": (1, lambda v, a, t: (v * v).sum(-1)),
    "A:A": (2, lambda v, a, t: (a * a).sum((-2, -1))),
    "tr(AAA)": (2, lambda v, a, t: torch.einsum("...ab,...bc,...ca->...", a, a, a)),
    "v.A.v": (2, lambda v, a, t: torch.einsum("...a,...ab,...b->...", v, a, v)),
    "v.AA.v": (2, lambda v, a, t: torch.einsum("...a,...ab,...bc,...c->...", v, a, a, v)),
    "T:T": (3, lambda v, a, t: (t * t).sum((-3, -2, -1))),
    "v.T:A": (3, lambda v, a, t: torch.einsum("...a,...abc,...bc->...", v, t, a)),
    "T.T:A": (3, lambda v, a, t: torch.einsum("...abc,...abd,...cd->...", t, t, a)),
    "vvv:T": (3, lambda v, a, t: torch.einsum("...a,...b,...c,...abc->...", v, v, v, t)),
    "v.TT.v": (3, lambda v, a, t: torch.einsum("...a,...abc,...dbc,...d->...", v, t, t, v)),
    "TT:AA": (3, lambda v, a, t: torch.einsum("...abc,...ade,...bd,...ce->...", t, t, a, a)),
    "v.A.T:A": (3, lambda v, a, t: torch.einsum("...a,...ab,...bcd,...cd->...", v, a, t, a)),
}

#: The squared norms per order, as contracted in HIP-NN-TS (Chigaev et al., J. Chem. Phys. 158, 184108 (2023)).
NORMS = ("v.v", "A:A", "T:T")


def invariant_names(max_order: int, kind: str = "complete") -> list[str]:
    """Names of the invariants used for tensors up to ``max_order`` (1..3): ``"norms"`` (one squared
    norm per order) or ``"complete"`` (the functionally independent set above)."""
    if not 1 <= max_order <= 3:
        raise ValueError(f"max_order must be 1, 2 or 3, got {max_order}")
    if kind == "norms":
        return list(NORMS[:max_order])
    if kind == "complete":
        return [name for name, (order, _) in INVARIANTS.items() if order <= max_order]
    raise ValueError(f"unknown invariant set {kind!r}; choose 'norms' or 'complete'")


def invariants(names: list[str], v: torch.Tensor, a: torch.Tensor | None, t: torch.Tensor | None) -> torch.Tensor:
    """The named invariants of ``v``, ``A``, ``T`` stacked on a new last axis."""
    return torch.stack([INVARIANTS[name][1](v, a, t) for name in names], dim=-1)


def moments(radial: torch.Tensor, powers: list[torch.Tensor]) -> list[torch.Tensor]:
    """Radially weighted moments of neighbour directions on padded pair blocks.

    ``radial`` ``(N, n, n, S)`` (zero for non-pairs), ``powers`` from :func:`direction_powers` on
    ``(N, n, n, 3)`` unit vectors. Returns ``[Psi_0 (N, n, S), Psi_1 (N, n, S, 3), Psi_2 (N, n, S, 9), ...]``
    with ``Psi_l[i, s] = sum_j R_s(r_ij) u_ij^{⊗l}``.
    """
    out = [radial.sum(2)]
    for p in powers:
        out.append(torch.einsum("cijs,cijm->cism", radial, p))
    return out
