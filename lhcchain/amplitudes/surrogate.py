"""The trained surrogate as one callable: ``load_surrogate(checkpoint)(momenta) -> (value, sigma)``.

``value`` is ``A_NN = exp(mean ln A)`` in the units and conventions of the dataset's amplitude
(:func:`lhcchain.amplitudes.features.exact_amplitude`: the bare physics-core ``|M|^2`` for
single-subprocess processes such as ``gg_3g``); ``sigma`` is its total uncertainty to first order,
``A_NN * sigma_ln`` with ``sigma_ln = sd_target * sqrt(sigma_syst^2 + sigma_stat^2)``, both
uncertainties multiplied by the checkpoint's ``sigma_scale`` (validation-set calibration,
:mod:`.train`; 1 without it).
:meth:`Surrogate.predict_log` gives the log-space quantities separately. Both follow the dtype and
device of the input momenta (the network runs in float32 on the surrogate's device).

For MadNIS, e.g. ``f = S * surrogate(p)[0] * w / (2 s_hat) * GEV2_TO_PB`` with the process's
symmetry factor ``S`` replaces ``Process.matrix_element`` in the integrand of a partonic process.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from ..errors import InputError
from .features import FeatureMap, TargetMap
from .train import FORMAT, build_model, predict


class Surrogate:
    """Trained amplitude network with its preprocessing (see the module doc)."""

    def __init__(self, payload: dict, device: torch.device) -> None:
        self.settings = payload["settings"]
        self.process = payload.get("process")
        self.amplitude_kind = payload.get("amplitude_kind")
        self.n_legs = int(payload["n_legs"])
        self.features = FeatureMap.from_state(payload["features"])
        self.target = TargetMap.from_state(payload["target"])
        self.device = device
        self.model = build_model(self.settings, self.features.dim, payload["structure"]).to(device)
        self.model.load_state_dict(payload["model"])
        self.model.eval()
        self.samples = int(self.settings["eval_samples"])
        self.sigma_scale = float(payload.get("sigma_scale", 1.0))

    def predict_log(self, momenta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(ln A_NN, sigma_syst_ln, sigma_stat_ln)`` (batch,) in float64 on the surrogate's device,
        uncertainties calibrated (module doc)."""
        if momenta.ndim != 3 or momenta.shape[1:] != (self.n_legs, 4):
            raise InputError(f"surrogate for {self.process!r} expects momenta of shape (batch, {self.n_legs}, 4), "
                             f"got {tuple(momenta.shape)}")
        x = self.features(momenta.to(self.device))
        mean, syst, stat = predict(self.model, x, self.samples)
        sd = self.target.std * self.sigma_scale
        return self.target.log_amplitude(mean), syst.to(torch.float64) * sd, stat.to(torch.float64) * sd

    def __call__(self, momenta: Tensor) -> tuple[Tensor, Tensor]:
        """``(value, sigma)`` (batch,) in the dtype and on the device of ``momenta``."""
        log_a, syst, stat = self.predict_log(momenta)
        value = torch.exp(log_a)
        sigma = value * torch.sqrt(syst**2 + stat**2)
        return value.to(momenta.dtype).to(momenta.device), sigma.to(momenta.dtype).to(momenta.device)


def load_surrogate(checkpoint: str | os.PathLike[str], device: str | torch.device | None = None) -> Surrogate:
    """The surrogate stored in ``checkpoint`` (written by :func:`lhcchain.amplitudes.train.train`).

    ``device``: a torch device, or ``auto``/``cpu``/``cuda[:N]`` as in the config; default ``auto``.
    """
    from ..device import select_device

    dev = device if isinstance(device, torch.device) else select_device(device or "auto")
    try:
        payload = torch.load(checkpoint, map_location=dev, weights_only=False)
    except Exception as exc:  # missing, truncated or not a torch file (UnpicklingError, RuntimeError, ...)
        raise InputError(f"surrogate checkpoint {checkpoint} cannot be read: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{checkpoint} is not an amplitude-surrogate checkpoint (format {FORMAT})")
    return Surrogate(payload, dev)
