"""Stage ``symbolic``: the optimal observable of the CP-odd coupling ``f_WWt`` in WBF Higgs production.

Modules:

* :mod:`.data` -- score data at parton level: exact ``A, B, C`` per event from the physics core,
  the score ``t = B/A`` (TeV^2) and the jet and Higgs observables.
* :mod:`.regression` -- symbolic regression of the score (pyoperon), the Pareto front of formulas
  and a least-squares refit of each formula's constants.
* :mod:`.information` -- Fisher information captured by an observable (linear and binned) and
  expected limits on ``f`` from exact per-event reweighting.
* :mod:`.run` -- the stage entry points.

Units: GeV, radians; ``f = f_WWt / Lambda^2`` in TeV^-2, scores in TeV^2.
"""
