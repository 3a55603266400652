"""MadNIS on a physics-core process, and the VEGAS and flat baselines on the same integrand.

The integrand is :meth:`lhcchain.physics.process.Process.madnis_function`: PDFs x |M|^2 x phase-space
Jacobian x cuts in pb, one channel per phase-space mapping of the process, prior channel weights
from its propagators. :class:`CheckedIntegrand` wraps it to count integrand calls and to stop on a
NaN or negative weight with the process and channel named (points outside the cuts are zeros).

Settings (``madnis.training``; what a library caller leaves out comes from that section of the default
config, through :func:`lhcchain.config.resolve_settings`):

* ``flow``: ``layers``, ``units``, ``bins`` of MadNIS's rational-quadratic spline coupling flow
  (one flow per channel); ``channel_weights``: train MadNIS's channel-weight network on top of the
  prior (``cwnet_units``, ``cwnet_layers``).
* ``vegas``: ``iterations`` x ``samples_per_channel`` calls of VEGAS pre-training (the ``vegas``
  package's adaptive grids, per channel, ``bins``, ``damping``), whose grids initialise the flows.
* ``steps`` online training steps of ``batch_size`` calls with Adam at ``lr`` (cosine decay to
  ``lr * lr_min_factor``); ``uniform_channel_ratio`` of each batch spread evenly over channels,
  the rest stratified by the channels' variances; the stratified variance loss (MadNIS's default
  for several channels); after each online step ``buffered_steps`` steps on points from a buffer
  of ``buffer_capacity`` (no new integrand calls); channels whose share of the integral is below
  ``channel_dropping.threshold`` are dropped every ``channel_dropping.interval`` steps;
  ``max_minutes`` caps the training wall time.

Baselines at the same number of integrand calls: VEGAS trains its per-channel grids with as many
calls as MadNIS's pre-training and online training together; flat sampling is the process's channel
mappings with the prior channel weights and uniform random numbers (no adaptation, calls split
evenly over the channels), which spends the calls the others train with on more evaluation points
(:func:`lhcchain.madnis.run.integrate`). All three are sampled through MadNIS's own classes, so weights,
channel allocation and normalisation follow one convention (:mod:`.weights`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from madnis.integrator import Integrand, Integrator, SampleBatch, VegasPreTraining

from ..errors import InputError
from ..physics.process import MatrixElement, Process

log = logging.getLogger("lhcchain.madnis")

FORMAT = "lhcchain-madnis-integrator/1"
# Smallest spline bin width, height and slope. MadNIS's default (1e-3) is wider than the VEGAS bins
# of a narrow resonance (a 0.5 GeV Z' gives bins ~4e-5 wide), and the VEGAS-initialised flow then
# yields NaN samples; so does float32. The integrator therefore runs in float64 with these limits.
SPLINE_LIMITS = {"min_bin_width": 1e-6, "min_bin_height": 1e-6, "min_bin_derivative": 1e-6}


class CheckedIntegrand:
    """``(x, c) -> (f, alpha)`` of a process (module doc) that counts calls and rejects NaN or
    negative weights. ``matrix_element`` replaces the exact one (e.g. a surrogate)."""

    def __init__(self, process: Process, matrix_element: MatrixElement | None = None) -> None:
        self.process = process
        self.matrix_element = matrix_element
        self.calls = 0

    def __call__(self, x: torch.Tensor, channels: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
        f, alpha = self.process.madnis_function(x, channels, self.matrix_element)
        self.calls += x.shape[0]
        bad = ~torch.isfinite(f) | (f < 0)
        if bool(bad.any()):
            chans = channels if isinstance(channels, torch.Tensor) else torch.full((x.shape[0],), int(channels))
            first = int(bad.nonzero()[0, 0])
            channel = self.process.channel_names[int(chans[first])]
            what = "NaN or infinite" if not torch.isfinite(f[first]) else "negative"
            raise InputError(
                f"process {self.process.name!r}, channel {channel!r}: the integrand returned a {what} weight "
                f"({float(f[first]):.4g} pb) at {int(bad.sum())} of {x.shape[0]} points, e.g. at "
                f"x = {[round(v, 6) for v in x[first].tolist()]}; weights must be finite and >= 0 "
                f"(points outside the cuts have weight 0)"
            )
        return f, alpha

    def integrand(self) -> Integrand:
        """The ``madnis.integrator.Integrand`` of this function."""
        return Integrand(self, input_dim=self.process.n_random, channel_count=self.process.n_channels,
                         has_channel_weight_prior=True)


def build_integrator(function: CheckedIntegrand, settings: Mapping[str, Any], device: torch.device) -> Integrator:
    """A MadNIS ``Integrator`` for ``function`` with resolved ``settings`` (module doc), on ``device``."""
    s = settings
    flow = s["flow"]
    steps = max(int(s["steps"]), 1)

    def scheduler(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=s["lr"] * s["lr_min_factor"])

    return Integrator(
        function.integrand(),
        flow_kwargs={"layers": flow["layers"], "units": flow["units"], "bins": flow["bins"], **SPLINE_LIMITS},
        train_channel_weights=bool(s["channel_weights"]),
        cwnet_kwargs={"layers": s["cwnet_layers"], "units": s["cwnet_units"]},
        batch_size=int(s["batch_size"]),
        learning_rate=float(s["lr"]),
        scheduler=scheduler,
        uniform_channel_ratio=float(s["uniform_channel_ratio"]),
        buffer_capacity=int(s["buffer_capacity"]),
        minimum_buffer_size=int(s["minimum_buffer_size"]),
        buffered_steps=int(s["buffered_steps"]),
        channel_dropping_threshold=float(s["channel_dropping"]["threshold"]),
        channel_dropping_interval=int(s["channel_dropping"]["interval"]),
        device=device,
        dtype=torch.float64,
    )


def _vegas(integrator: Integrator, settings: Mapping[str, Any], seed: int) -> VegasPreTraining:
    vegas = VegasPreTraining(integrator, bins=int(settings["vegas"]["bins"]), damping=float(settings["vegas"]["damping"]))
    vegas.rng = np.random.default_rng(seed)
    return vegas


def train_madnis(function: CheckedIntegrand, settings: Mapping[str, Any], device: torch.device,
                 seed: int) -> tuple[Integrator, dict[str, Any]]:
    """VEGAS pre-training, then MadNIS training (module doc). Returns the integrator and a summary
    (calls, steps, wall time in s, loss history)."""
    torch.manual_seed(seed)
    integrator = build_integrator(function, settings, device)
    start = time.perf_counter()
    calls0 = function.calls
    vegas = _vegas(integrator, settings, seed)
    iterations = int(settings["vegas"]["iterations"])
    if iterations > 0:
        vegas.train([int(settings["vegas"]["samples_per_channel"])] * iterations,
                    callback=lambda st: log.info("madnis: VEGAS pre-training iteration %d, rel. std %.4g", st.step, st.variance))
        vegas.initialize_integrator()
    budget = 60.0 * float(settings["max_minutes"])
    losses: list[tuple[int, float, bool]] = []
    last = time.perf_counter()
    for step in range(int(settings["steps"])):
        status = integrator.train_step()
        losses.append((step, float(status.loss), bool(status.buffered)))
        if not math.isfinite(status.loss):
            raise InputError(f"process {function.process.name!r}: MadNIS training loss became {status.loss} at step {step}")
        now = time.perf_counter()
        if now - last >= 10.0:
            last = now
            log.info("madnis: step %d/%d, loss %.4g, lr %.3g, %d integrand calls, %d channels dropped, %.0f s",
                     step + 1, settings["steps"], status.loss, status.learning_rate or settings["lr"],
                     function.calls - calls0, status.dropped_channels, now - start)
        if now - start > budget:
            log.info("madnis: stopping after %d steps at the %.1f min budget", step + 1, settings["max_minutes"])
            break
    summary = {
        "train_calls": function.calls - calls0,
        "train_steps": len(losses),
        "train_time_s": time.perf_counter() - start,
        "loss": losses,
        "active_channels": int(integrator.active_channels_mask.sum()),
    }
    log.info("madnis: trained %d steps with %d integrand calls in %.1f s", len(losses), summary["train_calls"], summary["train_time_s"])
    return integrator, summary


def train_vegas(function: CheckedIntegrand, settings: Mapping[str, Any], calls: int, seed: int) -> tuple[VegasPreTraining, dict[str, Any]]:
    """The VEGAS baseline: per-channel adaptive grids trained with ``calls`` integrand calls (to within
    the number of channels): iterations of ``vegas.samples_per_channel`` points per channel, the last
    one with the remainder."""
    integrator = Integrator(function.integrand(), train_channel_weights=False, flow_kwargs={"bins": 2})
    vegas = _vegas(integrator, settings, seed)
    per_channel, n_channels = int(settings["vegas"]["samples_per_channel"]), function.process.n_channels
    full, rest = divmod(int(calls), per_channel * n_channels)
    schedule = [per_channel] * full + ([rest // n_channels] if rest // n_channels >= 2 else [])
    start, calls0 = time.perf_counter(), function.calls
    vegas.train(schedule or [2])
    return vegas, {"train_calls": function.calls - calls0, "train_time_s": time.perf_counter() - start,
                   "iterations": len(schedule or [2])}


def flat_sampler(function: CheckedIntegrand, settings: Mapping[str, Any], seed: int) -> VegasPreTraining:
    """Flat sampling: untrained (uniform) VEGAS grids, calls split evenly over channels."""
    return _vegas(Integrator(function.integrand(), train_channel_weights=False, flow_kwargs={"bins": 2}), settings, seed)


def draw(sampler: Integrator | VegasPreTraining, n: int, batch_size: int, mode: str = "variance") -> SampleBatch:
    """``n`` weighted points (weights in pb, ``sigma = mean``) from MadNIS or a VEGAS/flat sampler, in
    batches of ``batch_size`` calls; ``mode`` allocates calls to channels (``variance`` | ``uniform``)."""
    batches = []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        if isinstance(sampler, Integrator):
            with torch.no_grad():
                batch = sampler.sample(m, batch_size=m, channel_weight_mode=mode)
        else:
            batch = sampler.sample(m, batch_size=m, channel_weight_mode=mode)
        batches.append(batch.map(lambda t: t.detach()))
    out = SampleBatch.cat(batches) if len(batches) > 1 else batches[0]
    return out


def save_integrator(path: str, integrator: Integrator, process_spec: Mapping[str, Any], settings: Mapping[str, Any],
                    summary: Mapping[str, Any]) -> None:
    """Checkpoint: the integrator's state with the process entry and settings that made it."""
    torch.save({"format": FORMAT, "process": dict(process_spec), "settings": dict(settings),
                "state": integrator.state_dict(), "summary": dict(summary)}, path)


def load_integrator(path: str, device: str | torch.device = "auto",
                    threads: int | None = None) -> tuple[Integrator, CheckedIntegrand, dict[str, Any]]:
    """Rebuild a saved integrator: ``(integrator, its CheckedIntegrand, checkpoint payload)``."""
    from ..device import select_device
    from ..physics.processes import build_process

    dev = device if isinstance(device, torch.device) else select_device(device, threads)
    try:
        payload = torch.load(path, map_location=dev, weights_only=False)
    except Exception as exc:  # missing, truncated or not a torch file
        raise InputError(f"MadNIS checkpoint {path} cannot be read: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path} is not a MadNIS integrator checkpoint (format {FORMAT})")
    process = build_process(payload["process"], str(dev), threads)
    function = CheckedIntegrand(process)
    integrator = build_integrator(function, payload["settings"], dev)
    integrator.load_state_dict(payload["state"])
    return integrator, function, payload
