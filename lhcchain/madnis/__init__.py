"""Stage ``madnis``: neural multi-channel importance sampling with the ``madnis`` library.

Modules:

* :mod:`.integrator` -- the checked integrand of a physics-core process, MadNIS training (VEGAS
  pre-training, buffered training, stratified variance loss, channel dropping), the VEGAS and flat
  baselines, checkpoints (:func:`~.integrator.load_integrator`).
* :mod:`.weights` -- cross-section, relative standard deviation, unweighting efficiency, ``w_max``.
* :mod:`.events` -- unweighted events as LHE (pylhe) and parquet.
* :mod:`.surrogate` -- the surrogate's matrix element and the stage-two ratio of two-stage unweighting.
* :mod:`.unweighting` -- the unweighting loop (hit-or-miss, or two-stage with the surrogate) and the
  chi^2 comparison of two unweighted samples.
* :mod:`.reference` -- Pythia 8's cross-section of the same process.
* :mod:`.plots` -- weight, channel and unweighted-distribution figures.
* :mod:`.run` -- the stage's driver, :func:`~.run.integrate` and :func:`~.run.unweight`.

Units: GeV, cross-sections and weights in pb, times in s.
"""

from .._lazy import lazy_attributes

__all__ = ["integrate", "unweight", "load_integrator"]

__getattr__ = lazy_attributes(__name__, {"integrate": "run", "unweight": "run", "load_integrator": "integrator"})
