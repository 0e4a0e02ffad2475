"""The tensor invariants: rotation invariant and functionally independent (full-rank Jacobian)."""

import itertools

import pytest
import torch
from scipy.spatial.transform import Rotation

from workbench.models.gmnn import gaussian_moment_invariants, n_gaussian_moment_invariants
from workbench.models.tensors import deviator2, deviator3, invariant_names, invariants


def random_tensors(x):
    """(v, A, T) from 19 numbers: a vector, a symmetric matrix, a symmetric rank-3 tensor (traceless parts)."""
    v = x[:3]
    iu = torch.triu_indices(3, 3)
    s = torch.zeros(3, 3, dtype=x.dtype)
    s[iu[0], iu[1]] = x[3:9]
    s = s + s.T - torch.diag(s.diagonal())
    t = torch.zeros(3, 3, 3, dtype=x.dtype)
    for k, idx in enumerate(itertools.combinations_with_replacement(range(3), 3)):
        for p in set(itertools.permutations(idx)):
            t[p] = x[9 + k]
    return v, deviator2(s), deviator3(t)


@pytest.mark.parametrize("max_order,expected", [(1, 1), (2, 5), (3, 12)])
def test_complete_invariant_set_is_functionally_independent_and_maximal(max_order, expected):
    names = invariant_names(max_order, "complete")
    assert len(names) == expected  # 3 + 5 + 7 degrees of freedom less 3 for a rotation
    x0 = torch.randn(19, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    jac = torch.autograd.functional.jacobian(lambda x: invariants(names, *random_tensors(x)), x0)
    assert torch.linalg.matrix_rank(jac) == expected

    # Another product of four factors, not in the set, does not raise the rank: the set is maximal.
    def extra(x):
        _, a, t = random_tensors(x)
        return torch.einsum("abc,abd,ce,ed->", t, t, a, a)

    if max_order == 3:
        jac2 = torch.autograd.functional.jacobian(
            lambda x: torch.cat([invariants(names, *random_tensors(x)), extra(x)[None]]), x0
        )
        assert torch.linalg.matrix_rank(jac2) == expected


def test_invariants_do_not_change_under_rotation():
    x = torch.randn(19, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    v, a, t = random_tensors(x)
    r = torch.tensor(Rotation.random(random_state=2).as_matrix())
    rotated = (r @ v, r @ a @ r.T, torch.einsum("ai,bj,ck,ijk->abc", r, r, r, t))
    names = invariant_names(3, "complete")
    torch.testing.assert_close(invariants(names, v, a, t), invariants(names, *rotated), rtol=1e-12, atol=1e-12)
    assert torch.allclose(deviator3(t).diagonal(dim1=0, dim2=1).sum(-1), torch.zeros(3, dtype=torch.float64))


def test_gaussian_moment_invariants_count_and_rotation():
    gen = torch.Generator().manual_seed(3)
    s = 3
    dirs = torch.randn(6, 3, dtype=torch.float64, generator=gen)
    weights = torch.rand(6, s, dtype=torch.float64, generator=gen)

    def psi(d):
        u = d / d.norm(dim=1, keepdim=True)
        uu = (u[:, :, None] * u[:, None, :]).flatten(1)
        uuu = (uu[:, :, None] * u[:, None, :]).flatten(1)
        return [weights.sum(0)[None], (weights.T @ u)[None], (weights.T @ uu)[None], (weights.T @ uuu)[None]]

    r = torch.tensor(Rotation.random(random_state=4).as_matrix())
    g, g_rot = gaussian_moment_invariants(psi(dirs)), gaussian_moment_invariants(psi(dirs @ r.T))
    assert g.shape == (1, n_gaussian_moment_invariants(s))
    torch.testing.assert_close(g, g_rot, rtol=1e-12, atol=1e-12)
