"""Generative networks behind one interface, on the standardised representation of :mod:`.data`.

Every network (a :class:`Generator`) works on ``x`` (B, D) with absent dimensions set to 0, a float
``mask`` (B, D) of present dimensions (a prefix: leptons, then the jets of the event) and a condition
``cond`` (B, C) (the one-hot jet multiplicity, or C = 0). It provides ``loss`` (per event, to be
averaged), ``sample`` and ``log_prob`` (per event, in the standardised space, summed over present
dimensions), ``kl`` (0 unless Bayesian), ``set_solver`` (the CFM's ODE solver and steps) and
``set_bayes_mode`` (how Bayesian layers draw their weights).

Families (``family`` in the settings):

* ``cfm``: conditional flow matching (Lipman et al. 2023) on the straight path
  ``x_t = (1 - t) x0 + t x1`` from noise ``x0 ~ N(0, 1)`` to data ``x1``; the loss is the mean squared
  error of the velocity ``v(x_t, t) -> x1 - x0`` over present dimensions. Sampling integrates
  ``dx/dt = v`` from t = 0 to 1 with a fixed-step ``solver`` (``euler``, ``midpoint``, ``rk4``) and
  ``steps`` steps; ``log p(x1) = log N(x0) - int_0^1 div v dt`` with the exact divergence, integrated
  backwards with the same solver. The velocity network (``network``) is an ``mlp`` (input
  ``x_t``, time features and the condition) or a ``transformer`` over particles (one token per
  lepton or jet: its features, time and condition, a learned particle embedding; absent jets masked).
  ``bayesian: true`` (MLP only) makes every layer a mean-field Gaussian :class:`~lhcchain.nn.BayesLinear`
  (prior ``N(0, prior_std^2)``), trained with ``kl_weight * KL / N_train`` added to the loss.
* ``flow``: a rational-quadratic spline coupling flow (``zuko.flows.NSF`` with two passes, i.e.
  coupling layers, random permutations), ``transforms`` layers of ``bins`` bins. With one conditional
  network the absent dimensions are filled with N(0, 1) noise in training and their N(0, 1) density
  is subtracted from ``log_prob``.
* ``transformer``: an autoregressive transformer over the D scalar features (in the order of
  :func:`.data.layout`), causal attention, a start token from the condition, and a Gaussian mixture of
  ``components`` components for each next feature; ``log_prob`` is exact.

:class:`EventModel` holds one conditional network (``conditional: true``) or one network per
multiplicity, and routes events by their multiplicity index ``k``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import zuko
from torch import Tensor, nn

from ..errors import InputError
from ..nn import BayesLinear, BayesModule
from .data import n_dims

FAMILIES = ("cfm", "flow", "transformer")
NETWORKS = ("mlp", "transformer")
SOLVERS = ("euler", "midpoint", "rk4")
LOG_2PI = math.log(2 * math.pi)


def mlp(n_in: int, hidden: int, layers: int, n_out: int, bayesian: bool = False, prior_std: float = 1.0) -> nn.Sequential:
    """``layers`` hidden layers of ``hidden`` SiLU units (Bayesian layers if ``bayesian``)."""
    def lin(a: int, b: int) -> nn.Module:
        return BayesLinear(a, b, prior_std) if bayesian else nn.Linear(a, b)

    mods: list[nn.Module] = []
    width = n_in
    for _ in range(int(layers)):
        mods += [lin(width, int(hidden)), nn.SiLU()]
        width = int(hidden)
    mods.append(lin(width, n_out))
    return nn.Sequential(*mods)


def time_features(t: Tensor) -> Tensor:
    """(B, 1) times in [0, 1] -> (B, 9): t and sin/cos(2 pi k t), k = 1..4."""
    k = torch.arange(1, 5, device=t.device, dtype=t.dtype) * (2 * math.pi)
    return torch.cat([t, torch.sin(t * k), torch.cos(t * k)], -1)


def log_normal(x: Tensor, mask: Tensor) -> Tensor:
    """Standard-normal log-density summed over present dimensions."""
    return -0.5 * ((x * x + LOG_2PI) * mask).sum(-1)


class Generator(BayesModule):
    """The interface of every network (module doc)."""

    bayesian = False

    def loss(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        raise NotImplementedError

    def sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        raise NotImplementedError

    def log_prob(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        raise NotImplementedError

    def set_solver(self, solver: str, steps: int, where: str | None = None) -> None:
        """ODE solver and step count of sampling and ``log_prob``, checked here (the InputError names the
        settings section ``where`` when given); :class:`CFM` keeps them, the other families have no ODE."""
        at = f"{where}: " if where else ""
        if solver not in SOLVERS:
            raise InputError(f"{at}solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
        if int(steps) < 1:
            raise InputError(f"{at}solver steps must be >= 1, got {steps}")


class ParticleTransformer(nn.Module):
    """Velocity network over particles: tokens (l1, l2, j1, ...) of 4 feature slots each (module doc)."""

    def __init__(self, dim: int, n_cond: int, hidden: int, layers: int, heads: int) -> None:
        super().__init__()
        n_jets = (dim - 5) // 4
        particle = [0, 0, 1, 1, 1] + [2 + d // 4 for d in range(4 * n_jets)]
        slot = [0, 1, 0, 1, 2] + [d % 4 for d in range(4 * n_jets)]
        self.n_particles = 2 + n_jets
        self.register_buffer("flat_index", torch.tensor([p * 4 + s for p, s in zip(particle, slot)]), persistent=False)
        self.register_buffer("first_dim", torch.tensor([0, 2] + [5 + 4 * k for k in range(n_jets)]), persistent=False)
        self.embed = nn.Linear(4 + 9 + n_cond, hidden)
        self.particle = nn.Parameter(torch.randn(self.n_particles, hidden) * 0.1)
        layer = nn.TransformerEncoderLayer(hidden, heads, 2 * hidden, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(hidden, 4)

    def forward(self, x: Tensor, tf: Tensor, cond: Tensor, mask: Tensor) -> Tensor:
        b = x.shape[0]
        tokens = x.new_zeros(b, self.n_particles * 4).index_copy(1, self.flat_index, x).view(b, self.n_particles, 4)
        ctx = torch.cat([tf, cond], -1).unsqueeze(1).expand(b, self.n_particles, -1)
        h = self.embed(torch.cat([tokens, ctx], -1)) + self.particle
        absent = mask[:, self.first_dim] < 0.5
        h = self.encoder(h, src_key_padding_mask=absent)
        return self.out(h).reshape(b, -1)[:, self.flat_index]


class CFM(Generator):
    """Conditional flow matching (module doc)."""

    def __init__(self, dim: int, n_cond: int, network: str = "mlp", hidden: int = 256, layers: int = 4, heads: int = 4,
                 bayesian: bool = False, prior_std: float = 1.0) -> None:
        super().__init__()
        if network not in NETWORKS:
            raise InputError(f"generate: network must be one of {', '.join(NETWORKS)}, got {network!r}")
        if bayesian and network != "mlp":
            raise InputError("generate: bayesian: true needs network: mlp")
        self.network, self.bayesian = network, bool(bayesian)
        if network == "mlp":
            self.net = mlp(dim + 9 + n_cond, hidden, layers, dim, self.bayesian, prior_std)
        else:
            self.net = ParticleTransformer(dim, n_cond, int(hidden), int(layers), int(heads))
        self.solver, self.steps = "rk4", 20

    def set_solver(self, solver: str, steps: int, where: str | None = None) -> None:
        super().set_solver(solver, steps, where)
        self.solver, self.steps = solver, int(steps)

    def velocity(self, x: Tensor, t: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        tf = time_features(t.expand(x.shape[0], 1))
        if self.network == "mlp":
            v = self.net(torch.cat([x * mask, tf, cond], -1))
        else:
            v = self.net(x * mask, tf, cond, mask)
        return v * mask

    def loss(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        x0 = torch.randn_like(x) * mask
        t = torch.rand(x.shape[0], 1, device=x.device, dtype=x.dtype)
        xt = (1 - t) * x0 + t * x
        err = (self.velocity(xt, t, mask, cond) - (x - x0)) ** 2
        return (err * mask).sum(-1) / mask.sum(-1)

    def _step(self, f, x: Tensor, t: float, h: float) -> Tensor:
        if self.solver == "euler":
            return x + h * f(x, t)
        if self.solver == "midpoint":
            return x + h * f(x + 0.5 * h * f(x, t), t + 0.5 * h)
        k1 = f(x, t)
        k2 = f(x + 0.5 * h * k1, t + 0.5 * h)
        k3 = f(x + 0.5 * h * k2, t + 0.5 * h)
        k4 = f(x + h * k3, t + h)
        return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    def sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        x = torch.randn_like(mask) * mask
        h = 1.0 / self.steps

        def f(y: Tensor, t: float) -> Tensor:
            return self.velocity(y, y.new_full((1, 1), t), mask, cond)

        for i in range(self.steps):
            x = self._step(f, x, i * h, h)
        return x

    def log_prob(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        d = x.shape[1]

        def f(state: Tensor, t: float) -> Tensor:
            with torch.enable_grad():
                y = state[:, :d].detach().requires_grad_(True)
                v = self.velocity(y, y.new_full((1, 1), t), mask, cond)
                div = sum(torch.autograd.grad(v[:, i].sum(), y, retain_graph=i < d - 1)[0][:, i] for i in range(d))
            return torch.cat([v.detach(), div.detach().unsqueeze(1)], 1)

        state = torch.cat([x * mask, x.new_zeros(x.shape[0], 1)], 1)
        h = 1.0 / self.steps
        for i in range(self.steps):
            state = self._step(f, state, 1.0 - i * h, -h)
        x0, integral = state[:, :d], state[:, d]  # integral = int_1^0 div dt = -int_0^1 div dt
        return log_normal(x0, mask) + integral


class SplineFlow(Generator):
    """Rational-quadratic spline coupling flow from zuko (module doc)."""

    def __init__(self, dim: int, n_cond: int, transforms: int = 6, bins: int = 8, hidden: int = 128, layers: int = 2) -> None:
        super().__init__()
        self.n_cond = n_cond
        self.flow = zuko.flows.NSF(dim, n_cond, transforms=int(transforms), bins=int(bins), passes=2, randperm=True,
                                   hidden_features=[int(hidden)] * int(layers))

    def _dist(self, cond: Tensor):  # noqa: ANN202 - a zuko distribution
        return self.flow(cond if self.n_cond else None)

    def log_prob(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        noise = torch.randn_like(x) * (1 - mask)
        full = x * mask + noise
        dist = self._dist(cond)
        return dist.log_prob(full) - log_normal(noise, 1 - mask)

    def loss(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        return -self.log_prob(x, mask, cond) / mask.sum(-1)

    def sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        dist = self._dist(cond)
        x = dist.sample() if self.n_cond else dist.sample((mask.shape[0],))
        return x * mask


class AutoregressiveTransformer(Generator):
    """Autoregressive transformer over scalar features with Gaussian-mixture outputs (module doc)."""

    def __init__(self, dim: int, n_cond: int, hidden: int = 64, layers: int = 3, heads: int = 4, components: int = 10) -> None:
        super().__init__()
        self.dim, self.n_cond, self.k = dim, n_cond, int(components)
        hidden = int(hidden)
        self.value = nn.Linear(1, hidden)
        self.position = nn.Parameter(torch.randn(dim, hidden) * 0.1)
        self.start = nn.Parameter(torch.zeros(hidden))
        self.cond = nn.Linear(n_cond, hidden, bias=False) if n_cond else None
        layer = nn.TransformerEncoderLayer(hidden, int(heads), 2 * hidden, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, int(layers), enable_nested_tensor=False)
        self.head = nn.Linear(hidden, 3 * self.k)
        self.register_buffer("causal", torch.triu(torch.full((dim, dim), float("-inf")), 1), persistent=False)

    def _mixture(self, x: Tensor, cond: Tensor, n: int) -> tuple[Tensor, Tensor, Tensor]:
        """Mixture parameters for features 0..n-1 given the features before each: (B, n, K) each."""
        b = x.shape[0]
        start = self.start.expand(b, 1, -1)
        if self.cond is not None:
            start = start + self.cond(cond).unsqueeze(1)
        h = torch.cat([start, self.value(x[:, : n - 1].unsqueeze(-1))], 1) + self.position[:n]
        h = self.encoder(h, mask=self.causal[:n, :n], is_causal=True)
        logits, mu, log_sigma = self.head(h).split(self.k, -1)
        return torch.log_softmax(logits, -1), mu, log_sigma.clamp(-7.0, 3.0)

    def log_prob(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        logw, mu, log_sigma = self._mixture(x * mask, cond, self.dim)
        z = (x.unsqueeze(-1) - mu) * torch.exp(-log_sigma)
        per_dim = torch.logsumexp(logw - 0.5 * z * z - log_sigma - 0.5 * LOG_2PI, -1)
        return (per_dim * mask).sum(-1)

    def loss(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        return -self.log_prob(x, mask, cond) / mask.sum(-1)

    def sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        x = torch.zeros_like(mask)
        n_max = int(mask.sum(-1).max())
        for i in range(n_max):
            logw, mu, log_sigma = (p[:, i] for p in self._mixture(x, cond, i + 1))
            comp = torch.distributions.Categorical(logits=logw).sample().unsqueeze(-1)
            x[:, i] = (mu.gather(-1, comp) + log_sigma.gather(-1, comp).exp() * torch.randn_like(mu[:, :1])).squeeze(-1)
        return x * mask


def make_generator(settings: Mapping, dim: int, n_cond: int) -> Generator:
    """The network of ``settings['family']`` for ``dim`` features and ``n_cond`` conditions."""
    family = settings["family"]
    if family == "cfm":
        return CFM(dim, n_cond, settings["network"], settings["hidden"], settings["layers"], settings["heads"],
                   settings["bayesian"], settings["prior_std"])
    if family == "flow":
        return SplineFlow(dim, n_cond, settings["transforms"], settings["bins"], settings["hidden"], settings["layers"])
    if family == "transformer":
        return AutoregressiveTransformer(dim, n_cond, settings["hidden"], settings["layers"], settings["heads"], settings["components"])
    raise InputError(f"generate: family must be one of {', '.join(FAMILIES)}, got {family!r}")


class EventModel(nn.Module):
    """One conditional network, or one network per multiplicity (module doc).

    Inputs are padded to ``D = 5 + 4 max(multiplicities)``; ``k`` (B,) is the index of each event's
    multiplicity in ``multiplicities``.
    """

    def __init__(self, settings: Mapping, multiplicities: Sequence[int]) -> None:
        super().__init__()
        self.multiplicities = [int(m) for m in multiplicities]
        self.conditional = bool(settings["conditional"])
        self.dims = [n_dims(m) for m in self.multiplicities]
        self.dim = max(self.dims)
        n = len(self.multiplicities)
        if self.conditional:
            self.nets = nn.ModuleList([make_generator(settings, self.dim, n)])
        else:
            self.nets = nn.ModuleList([make_generator(settings, d, 0) for d in self.dims])
        self.bayesian = self.nets[0].bayesian

    def mask(self, k: Tensor) -> Tensor:
        dims = torch.tensor(self.dims, device=k.device)[k]
        return (torch.arange(self.dim, device=k.device)[None, :] < dims[:, None]).float()

    def _route(self, fn: str, x: Tensor | None, k: Tensor, out_dim: int | None) -> Tensor:
        """Apply ``fn`` of the right network to each multiplicity's events; per-event results, or (B, D)."""
        mask = self.mask(k)
        if self.conditional:
            cond = nn.functional.one_hot(k, len(self.multiplicities)).to(mask.dtype)
            net = self.nets[0]
            return net.sample(mask, cond) if x is None else getattr(net, fn)(x * mask, mask, cond)
        out = mask.new_zeros(k.shape[0], *((out_dim,) if out_dim else ()))
        for j, (net, d) in enumerate(zip(self.nets, self.dims)):
            sel = torch.nonzero(k == j).squeeze(1)
            if sel.numel() == 0:
                continue
            m, cond = mask[sel, :d], mask.new_zeros(sel.numel(), 0)
            res = net.sample(m, cond) if x is None else getattr(net, fn)(x[sel, :d], m, cond)
            if out_dim:
                out[sel, :d] = res
            else:
                out[sel] = res
        return out

    def loss(self, x: Tensor, k: Tensor) -> Tensor:
        """Per-event training loss."""
        return self._route("loss", x, k, None)

    def log_prob(self, x: Tensor, k: Tensor) -> Tensor:
        """Per-event log-density in the standardised space (nats)."""
        return self._route("log_prob", x, k, None)

    def sample(self, k: Tensor) -> Tensor:
        """One event per entry of ``k``: (B, D), zero beyond each event's dimensions."""
        return self._route("sample", None, k, self.dim)

    def kl(self) -> Tensor:
        return sum((net.kl() for net in self.nets), torch.zeros(()))

    def set_solver(self, solver: str, steps: int) -> None:
        """:meth:`Generator.set_solver` of every network."""
        for net in self.nets:
            net.set_solver(solver, steps)

    def set_bayes_mode(self, mode: str) -> None:
        """:meth:`Generator.set_bayes_mode` of every network."""
        for net in self.nets:
            net.set_bayes_mode(mode)

    def resample_weights(self) -> None:
        """Draw a new weight set for ``fixed`` mode (one member of the Bayesian ensemble)."""
        for m in self.modules():
            if isinstance(m, BayesLinear):
                m.resample()
