"""Network building blocks shared by the stages that train torch networks."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

BAYES_MODES = ("local", "mean", "sample", "fixed")


class BayesLinear(nn.Module):
    """Mean-field Gaussian linear layer, prior ``N(0, prior_std^2)`` on every weight and bias.

    ``mode`` selects how the weights enter:

    * ``local`` (training): local reparametrisation, independent noise per point;
    * ``mean``: the mean weights;
    * ``sample``: one weight draw per slot of the input's leading axis, shared by the rest of the
      batch (input ``(M, ..., n_in)``; M draws at once, as for an ensemble of networks);
    * ``fixed``: one weight draw made by :meth:`resample`, kept across calls (a whole ODE trajectory
      integrated with one network).
    """

    def __init__(self, n_in: int, n_out: int, prior_std: float = 1.0, init_log_var: float = -12.0) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(n_in)
        self.mu_w = nn.Parameter(torch.empty(n_in, n_out).uniform_(-bound, bound))
        self.mu_b = nn.Parameter(torch.empty(n_out).uniform_(-bound, bound))
        self.logvar_w = nn.Parameter(torch.full((n_in, n_out), float(init_log_var)))
        self.logvar_b = nn.Parameter(torch.full((n_out,), float(init_log_var)))
        self.prior_var = float(prior_std) ** 2
        self.mode = "local"
        self.w: Tensor | None = None
        self.b: Tensor | None = None

    def resample(self) -> None:
        """Draw the weights used in ``fixed`` mode."""
        self.w = self.mu_w + (0.5 * self.logvar_w).exp() * torch.randn_like(self.mu_w)
        self.b = self.mu_b + (0.5 * self.logvar_b).exp() * torch.randn_like(self.mu_b)

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "mean":
            return x @ self.mu_w + self.mu_b
        if self.mode == "local":
            mean = x @ self.mu_w + self.mu_b
            var = (x * x) @ self.logvar_w.exp() + self.logvar_b.exp()
            return mean + var.sqrt() * torch.randn_like(mean)
        if self.mode == "fixed":
            if self.w is None:
                self.resample()
            return x @ self.w + self.b
        if self.mode != "sample":
            raise ValueError(f"BayesLinear mode must be one of {BAYES_MODES}, got {self.mode!r}")
        m, shape = x.shape[0], x.shape
        w = self.mu_w + (0.5 * self.logvar_w).exp() * torch.randn(m, *self.mu_w.shape, device=x.device, dtype=x.dtype)
        b = self.mu_b + (0.5 * self.logvar_b).exp() * torch.randn(m, 1, self.mu_b.shape[0], device=x.device, dtype=x.dtype)
        return torch.baddbmm(b, x.reshape(m, -1, shape[-1]), w).reshape(*shape[:-1], -1)

    def kl(self) -> Tensor:
        """KL divergence of the weight posterior from the prior (nats)."""
        total = torch.zeros((), device=self.mu_w.device)
        for mu, logvar in ((self.mu_w, self.logvar_w), (self.mu_b, self.logvar_b)):
            total = total + 0.5 * ((logvar.exp() + mu**2) / self.prior_var - 1.0 - logvar + math.log(self.prior_var)).sum()
        return total


class BayesModule(nn.Module):
    """Base of the networks that may hold :class:`BayesLinear` layers: sets their mode and sums their KL."""

    def set_bayes_mode(self, mode: str) -> None:
        """``mode`` (one of :data:`BAYES_MODES`) for every :class:`BayesLinear` inside; no effect without one."""
        for m in self.modules():
            if isinstance(m, BayesLinear):
                m.mode = mode

    def kl(self) -> Tensor:
        """Sum of the :class:`BayesLinear` layers' KL divergences (nats); 0 without one."""
        return sum((m.kl() for m in self.modules() if isinstance(m, BayesLinear)), torch.zeros(()))
