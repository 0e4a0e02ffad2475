"""Smooth cutoff functions and radial bases (distances in Å).

Every function here is at least once continuously differentiable and vanishes, with its first
derivative, at the cutoff, so energies and forces stay continuous as a neighbour crosses it.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def cosine_cutoff(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """``0.5 (cos(pi r / r_c) + 1)`` for ``r < r_c``, else 0 (Behler, J. Chem. Phys. 134, 074106 (2011));
    equal to the ``cos^2(pi r / 2 r_c)`` of HIP-NN."""
    inside = r < cutoff
    value = 0.5 * (torch.cos(torch.pi * r / cutoff) + 1.0)
    return torch.where(inside, value, torch.zeros_like(r))


def polynomial_cutoff(r: torch.Tensor, cutoff: float, p: int = 6) -> torch.Tensor:
    """Polynomial envelope ``1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)``, ``x = r / r_c``,
    for ``r < r_c`` (Gasteiger, Gross, Günnemann, ICLR 2020, DimeNet); smooth to order ``p - 1`` at ``r_c``."""
    x = r / cutoff
    value = 1.0 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
    return torch.where(r < cutoff, value, torch.zeros_like(r))


CUTOFF_FUNCTIONS = {"cosine": cosine_cutoff, "polynomial": polynomial_cutoff}


def cutoff_function(name: str):
    """The cutoff function called ``name`` (``"cosine"`` or ``"polynomial"``)."""
    if name not in CUTOFF_FUNCTIONS:
        raise ValueError(f"unknown cutoff function {name!r}; choose from {sorted(CUTOFF_FUNCTIONS)}")
    return CUTOFF_FUNCTIONS[name]


class InverseGaussianSensitivity(nn.Module):
    """HIP-NN distance sensitivities ``s_nu(r) = exp(-(1/r - 1/mu_nu)^2 / (2 sigma_nu^2)) f_c(r)``
    (Lubbers, Smith, Barros, J. Chem. Phys. 148, 241715 (2018)): Gaussians in inverse distance with
    trainable centres and widths (in 1/Å), dense at short range where the energy varies fastest.

    The centres start evenly spaced in ``1/r`` between ``1/soft_max`` and ``1/soft_min`` (Å).
    """

    def __init__(self, n: int, soft_min: float, soft_max: float, cutoff: float, cutoff_fn: str = "cosine"):
        super().__init__()
        inv = torch.linspace(1.0 / soft_max, 1.0 / soft_min, n, dtype=torch.float64)
        width = (inv[1] - inv[0]) if n > 1 else torch.tensor(1.0 / soft_min)
        self.inverse_centres = nn.Parameter(inv.to(torch.get_default_dtype()))
        self.inverse_widths = nn.Parameter(torch.full((n,), float(width)))
        self.cutoff = float(cutoff)
        self.cutoff_fn = cutoff_function(cutoff_fn)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``(...,)`` distances (Å) to ``(..., n)`` sensitivities."""
        z = (1.0 / r[..., None] - self.inverse_centres) / self.inverse_widths
        return torch.exp(-0.5 * z * z) * self.cutoff_fn(r, self.cutoff)[..., None]


class GaussianBasis(nn.Module):
    """Fixed Gaussians in distance, ``exp(-(r - mu_k)^2 / (2 w^2)) f_c(r)``, centres evenly spaced
    from ``r_min`` to ``cutoff`` (Å) and width ``w`` the spacing; the basis of Gaussian moments
    (Zaverkin & Kästner, J. Chem. Theory Comput. 16, 5410 (2020))."""

    def __init__(self, n: int, cutoff: float, r_min: float = 0.5, cutoff_fn: str = "cosine"):
        super().__init__()
        centres = torch.linspace(r_min, cutoff, n, dtype=torch.float64)
        self.register_buffer("centres", centres.to(torch.get_default_dtype()))
        self.width = float(centres[1] - centres[0]) if n > 1 else float(cutoff - r_min)
        self.cutoff = float(cutoff)
        self.cutoff_fn = cutoff_function(cutoff_fn)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``(...,)`` distances (Å) to ``(..., n)`` basis values."""
        z = (r[..., None] - self.centres) / self.width
        return torch.exp(-0.5 * z * z) * self.cutoff_fn(r, self.cutoff)[..., None]


class BesselBasis(nn.Module):
    """Radial Bessel functions ``sqrt(2 / r_c) sin(k pi r / r_c) / r`` times the cutoff function
    (Gasteiger, Gross, Günnemann, ICLR 2020), ``k = 1..n``; frequencies optionally trainable."""

    def __init__(self, n: int, cutoff: float, cutoff_fn: str = "polynomial", trainable: bool = False):
        super().__init__()
        freq = torch.arange(1, n + 1, dtype=torch.get_default_dtype()) * math.pi / cutoff
        self.frequencies = nn.Parameter(freq, requires_grad=trainable)
        self.cutoff = float(cutoff)
        self.cutoff_fn = cutoff_function(cutoff_fn)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``(...,)`` distances (Å) to ``(..., n)`` basis values (1/Å^1.5)."""
        x = r[..., None]
        return (
            math.sqrt(2.0 / self.cutoff)
            * torch.sin(self.frequencies * x)
            / x
            * self.cutoff_fn(r, self.cutoff)[..., None]
        )
