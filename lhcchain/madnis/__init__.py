"""Stage ``madnis``: neural multi-channel importance sampling with the ``madnis`` library.

Modules:

* :mod:`.integrator` -- the checked integrand of a physics-core process, MadNIS training (VEGAS
  pre-training, buffered training, stratified variance loss, channel dropping), the VEGAS and flat
  baselines, checkpoints (:func:`~.integrator.load_integrator`).
* :mod:`.weights` -- cross-section, relative standard deviation, unweighting efficiency, ``w_max``.
* :mod:`.events` -- unweighted events as LHE (pylhe) and parquet.
* :mod:`.surrogate` -- surrogate-accelerated two-stage unweighting.
* :mod:`.reference` -- Pythia 8's cross-section of the same process.
* :mod:`.run` -- the stage entry points :func:`~.run.integrate` and :func:`~.run.unweight`.

Units: GeV, cross-sections and weights in pb, times in s.
"""

from .._lazy import lazy_attributes

__all__ = ["integrate", "unweight", "load_integrator"]

__getattr__ = lazy_attributes(__name__, {"integrate": "run", "unweight": "run", "load_integrator": "integrator"})
