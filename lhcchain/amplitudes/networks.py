"""Surrogate networks: bodies (MLP, deep sets) x uncertainty heads (heteroscedastic, Bayesian, ensemble).

Every network maps standardised inputs ``x`` (batch, d) to ``(mu, s)``, each of shape
``(members, batch)``: ``mu`` the predicted standardised log-amplitude and ``s = ln sigma_syst`` of the
heteroscedastic likelihood ``N(y; mu, sigma_syst^2)`` (loss ``(y - mu)^2 / (2 sigma^2) + ln sigma``).
``members`` is the ensemble size (``ensemble``), the number of weight samples (``bayesian`` in
sampling mode) or 1 (``heteroscedastic``). All linear layers carry a leading member axis, so an
ensemble is trained as one batched network.

* ``heteroscedastic``: one network; ``sigma_stat = 0``.
* ``bayesian``: mean-field Gaussian weights and biases (:class:`~lhcchain.nn.BayesLinear`, prior ``N(0, 1)``),
  trained with the local reparametrisation trick and the ELBO (``kl_weight * KL / N_train`` added to
  the mean loss); ``sigma_stat`` is the spread of ``mu`` over weight samples.
* ``ensemble``: ``ensemble_size`` independently initialised networks on the same batches (deep
  ensemble); ``repulsion > 0`` adds the function-space repulsive-ensemble term
  ``repulsion * sum_m ln sum_n k(f_m, stopgrad f_n) / N_train`` with an RBF kernel on the batch
  predictions (median bandwidth), pushing members apart (D'Angelo & Fortuin 2021; Bahl et al. 2024).
  ``sigma_stat`` is the members' standard deviation.

Combination (:func:`combine`): ``mu = mean_m mu_m``, ``sigma_stat = std_m mu_m`` (ddof 1),
``sigma_syst^2 = mean_m sigma_m^2``.

Bodies:

* ``mlp``: ``layers`` hidden layers of ``hidden`` SiLU units.
* ``deepsets`` (``invariants`` features only): symmetric under every permutation of the process's
  *identical outgoing legs* ``F`` (gg -> n g: all outgoing gluons; the incoming legs and other
  outgoing legs ``O`` are kept distinct). With ``x_i = (ln|s_ai|)_(a in O)`` the per-leg inputs of
  ``i in F``, it computes ``e = mean_(i in F) phi1(x_i)``, ``q = mean_(i<j in F) phi2(ln|s_ij|,
  x_i + x_j, (x_i - x_j)^2)`` and ``rho(e, q, g)`` with ``g`` the invariants among ``O`` (and
  ``ln x1, ln x2`` for hadronic data). Permuting the legs in ``F`` permutes the terms of the two means
  only, so the output is invariant up to floating-point summation order (checked to 1e-12 in float64).
  ``phi1``, ``phi2``: two SiLU layers of ``hidden`` units; ``rho``: ``layers`` hidden layers.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..nn import BayesLinear, BayesModule
from .features import invariant_pairs

NETWORKS = ("mlp", "deepsets")
UNCERTAINTIES = ("heteroscedastic", "bayesian", "ensemble")
S_MIN, S_MAX = -16.0, 4.0


class Linear(nn.Module):
    """Independent linear layers for each member: ``(M, B, n_in) -> (M, B, n_out)``."""

    def __init__(self, members: int, n_in: int, n_out: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(members, n_in, n_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, n_out).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        out = torch.baddbmm(self.bias, x.reshape(shape[0], -1, shape[-1]), self.weight)
        return out.reshape(*shape[:-1], -1)


def _stack(make, n_in: int, hidden: int, layers: int, n_out: int | None) -> nn.Sequential:
    mods: list[nn.Module] = []
    width = n_in
    for _ in range(layers):
        mods += [make(width, hidden), nn.SiLU()]
        width = hidden
    if n_out is not None:
        mods.append(make(width, n_out))
    return nn.Sequential(*mods)


class AmplitudeNet(BayesModule):
    """Body + head (module doc); ``set_bayes_mode`` and ``kl`` (:class:`~lhcchain.nn.BayesModule`) act on
    the Bayesian head's layers. ``structure``: feature layout for deep sets (``n_legs``, ``identical`` legs,
    ``n_extra`` trailing non-invariant inputs)."""

    def __init__(self, n_in: int, *, network: str = "mlp", uncertainty: str = "heteroscedastic", hidden: int = 128,
                 layers: int = 4, ensemble_size: int = 5, prior_std: float = 1.0, structure: dict | None = None) -> None:
        super().__init__()
        if network not in NETWORKS:
            raise InputError(f"amplitudes: network must be one of {', '.join(NETWORKS)}, got {network!r}")
        if uncertainty not in UNCERTAINTIES:
            raise InputError(f"amplitudes: uncertainty must be one of {', '.join(UNCERTAINTIES)}, got {uncertainty!r}")
        if int(hidden) < 1 or int(layers) < 1:
            raise InputError(f"amplitudes: hidden and layers must be >= 1, got {hidden}, {layers}")
        self.network, self.uncertainty = network, uncertainty
        self.members = int(ensemble_size) if uncertainty == "ensemble" else 1
        if self.members < 1 or (uncertainty == "ensemble" and self.members < 2):
            raise InputError(f"amplitudes: ensemble_size must be >= 2, got {ensemble_size}")
        bayes = uncertainty == "bayesian"

        def make(a: int, b: int) -> nn.Module:
            return BayesLinear(a, b, prior_std, init_log_var=-18.0) if bayes else Linear(self.members, a, b)

        hidden, layers = int(hidden), int(layers)
        if network == "mlp":
            self.body = _stack(make, n_in, hidden, layers, 2)
            return
        if not structure or len(structure.get("identical", [])) < 2:
            raise InputError("amplitudes: the deepsets network needs invariant features and at least two identical "
                             "outgoing legs (dataset attribute identical_legs); use network: mlp")
        n_legs, ident = int(structure["n_legs"]), sorted(int(i) for i in structure["identical"])
        others = [leg for leg in range(n_legs) if leg not in ident]
        col = {pair: c for c, pair in enumerate(invariant_pairs(n_legs))}

        def c(a: int, b: int) -> int:
            return col[(min(a, b), max(a, b))]

        n_pairs = len(col)
        leg_cols = [[c(a, i) for a in others] for i in ident]
        pair_list = [(x, y) for x in range(len(ident)) for y in range(x + 1, len(ident))]
        self.register_buffer("leg_cols", torch.tensor(leg_cols, dtype=torch.long), persistent=False)
        self.register_buffer("pair_cols", torch.tensor([c(ident[x], ident[y]) for x, y in pair_list], dtype=torch.long), persistent=False)
        self.register_buffer("pair_a", torch.tensor([x for x, _ in pair_list], dtype=torch.long), persistent=False)
        self.register_buffer("pair_b", torch.tensor([y for _, y in pair_list], dtype=torch.long), persistent=False)
        glob = [c(a, b) for i, a in enumerate(others) for b in others[i + 1:]]
        glob += list(range(n_pairs, n_pairs + int(structure.get("n_extra", 0))))
        self.register_buffer("glob_cols", torch.tensor(glob, dtype=torch.long), persistent=False)
        n_o = len(others)
        self.phi1 = _stack(make, n_o, hidden, 2, None)
        self.phi2 = _stack(make, 1 + 2 * n_o, hidden, 2, None)
        self.rho = _stack(make, 2 * hidden + len(glob), hidden, layers, 2)

    # ------------------------------------------------------------------ forward

    def _body(self, x: Tensor) -> Tensor:
        if self.network == "mlp":
            return self.body(x)
        xl = x[..., self.leg_cols]                       # (M, B, m, |O|)
        e = self.phi1(xl).mean(-2)
        xa, xb = xl[..., self.pair_a, :], xl[..., self.pair_b, :]
        sij = x[..., self.pair_cols].unsqueeze(-1)        # (M, B, P, 1)
        q = self.phi2(torch.cat([sij, xa + xb, (xa - xb) ** 2], -1)).mean(-2)
        return self.rho(torch.cat([e, q, x[..., self.glob_cols]], -1))

    def forward(self, x: Tensor, members: int | None = None) -> tuple[Tensor, Tensor]:
        """``x`` (batch, d) -> ``(mu, s)`` of shape (members, batch); ``members``: weight samples of a
        Bayesian network in ``sample`` mode (default 1)."""
        m = self.members if self.uncertainty != "bayesian" else (members or 1)
        out = self._body(x.unsqueeze(0).expand(m, *x.shape))
        return out[..., 0], out[..., 1].clamp(S_MIN, S_MAX)


def combine(mu: Tensor, s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Member predictions (M, B) -> ``(mean, sigma_syst, sigma_stat)`` (B,) (module doc)."""
    mean = mu.mean(0)
    syst = (2.0 * s).exp().mean(0).sqrt()
    stat = mu.std(0) if mu.shape[0] > 1 else torch.zeros_like(mean)
    return mean, syst, stat


def heteroscedastic_loss(mu: Tensor, s: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
    """``(y - mu)^2 / (2 sigma^2) + ln sigma`` with ``sigma = exp(s)``, averaged over members and batch;
    ``weight`` (batch,): per-point factors (mean 1 over the data, :mod:`.train`'s ``loss_weight_power``)."""
    term = 0.5 * (y - mu) ** 2 * torch.exp(-2.0 * s) + s
    return (term if weight is None else term * weight).mean()


def repulsion_term(mu: Tensor) -> Tensor:
    """``sum_m ln sum_n k(f_m, stopgrad f_n)`` with an RBF kernel on the members' batch predictions."""
    f = mu
    d2 = torch.cdist(f, f.detach()) ** 2                  # (M, M)
    m = f.shape[0]
    off = d2.detach()[~torch.eye(m, dtype=torch.bool, device=f.device)]
    h = torch.clamp(off.median() / math.log(m + 1.0), min=1e-12)
    return torch.logsumexp(-d2 / h, dim=1).sum()
