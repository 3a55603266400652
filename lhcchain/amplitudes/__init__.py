"""Stage ``amplitudes``: surrogate |M|^2 networks with calibrated uncertainties.

Modules (each importable on its own; torch is needed everywhere):

* :mod:`.features` -- Lorentz invariants ``s_ij``, the exact target of a process, network inputs.
* :mod:`.data` -- :func:`~.data.make_dataset` (exact |M|^2 on sampled phase-space points) and
  :func:`~.data.import_dataset` (amplitudes computed elsewhere), both to one HDF5 layout.
* :mod:`.networks` -- MLP and deep-sets networks with heteroscedastic, Bayesian or ensemble heads.
* :mod:`.train` -- :func:`~.train.train` (progress, early stopping, checkpoints, resume, boosting).
* :mod:`.evaluate` -- :func:`~.evaluate.evaluate` (accuracy, pulls, speed; metrics.json + figures).
* :mod:`.surrogate` -- :func:`~.surrogate.load_surrogate`: ``momenta -> (value, sigma)``.

Conventions: those of :mod:`lhcchain.physics` (GeV, metric (+,-,-,-), momenta ``(batch, n, 4)``
with the two incoming particles first). The amplitude ("|M|^2") of a dataset is defined in
:func:`lhcchain.amplitudes.features.exact_amplitude`.

Uncertainties: the networks predict the *standardised log-amplitude* ``y = (ln A - mu) / sd`` and a
per-point ``sigma_syst`` in the same units; ``sigma_stat`` is the spread of ``y`` over weight samples
(Bayesian) or ensemble members; ``sigma_tot^2 = sigma_syst^2 + sigma_stat^2``. Pulls are computed in
log-amplitude space, ``(ln A_NN - ln A_true) / sigma_ln`` with ``sigma_ln = sd * sigma``; the
amplitude-space uncertainty the surrogate returns is the first-order ``A_NN * sigma_ln``.
"""

from .._lazy import lazy_attributes

__all__ = ["make_dataset", "import_dataset", "train", "evaluate", "load_surrogate", "Surrogate"]

_LAZY = {
    "make_dataset": "data",
    "import_dataset": "data",
    "train": "train",
    "evaluate": "evaluate",
    "load_surrogate": "surrogate",
    "Surrogate": "surrogate",
}

__getattr__ = lazy_attributes(__name__, _LAZY)
