"""Stage ``generate``: generative networks for Z(-> l l) + jets events, with uncertainties and evaluation.

Modules (torch is needed everywhere but :mod:`.data`):

* :mod:`.data` -- prepared parquet (or LHE) events -> per-particle representation (p_T, eta,
  Delta phi to the leading lepton, m) and its invertible, standardised :class:`~.data.Transform`;
  the way back to ``prepare``'s columns (:func:`~.data.to_columns`).
* :mod:`.models` -- conditional flow matching (MLP or particle-transformer velocity, optionally
  Bayesian), a zuko spline-coupling flow and an autoregressive Gaussian-mixture transformer behind
  one interface; :class:`~.models.EventModel` (one conditional network or one per multiplicity).
* :mod:`.train` -- :func:`~.train.train` (progress, early stopping, checkpoints, resume).
* :mod:`.sample` -- :func:`~.sample.sample`: events with the selection enforced, written as parquet and
  ROOT in ``prepare``'s schema, with the generation speed.
* :mod:`.evaluate` -- :func:`~.evaluate.evaluate`: ratio histograms with statistical and Bayesian
  bands, classifier AUC per multiplicity (:mod:`lhcchain.reweight.classifier`), Z peak against truth, speed; metrics.json + figures.

Units: GeV and radians. Multiplicities are exact jet counts of the ``prepare`` selection.
"""

from .._lazy import lazy_attributes

__all__ = ["train", "sample", "evaluate", "load_events", "load_model"]

_LAZY = {
    "train": "train",
    "sample": "sample",
    "evaluate": "evaluate",
    "load_events": "data",
    "load_model": "train",
}

__getattr__ = lazy_attributes(__name__, _LAZY)
