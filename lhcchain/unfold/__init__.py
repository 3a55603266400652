"""Stage ``unfold``: reco-level pseudo-data unfolded to the particle level with a simulation's (particle, reco) pairs.

Modules (torch is needed by all but :mod:`.data`, :mod:`.ibu` and :mod:`.settings`):

* :mod:`.data` -- pairs and pseudo-data from prepared samples: fiducial regions, pass masks, the
  same-selection check, bins.
* :mod:`.ibu` -- binned iterative Bayesian unfolding per observable with pyunfold.
* :mod:`.classify` -- density ratios and pass probabilities from the reweight stage's classifier.
* :mod:`.omnifold` -- OmniFold with pass masks.
* :mod:`.cinn` -- conditional generative unfolding (CFM or spline flow), acceptance, posterior
  calibration, and the iterative IcINN.
* :mod:`.evaluate` -- histograms, chi2/ndf, triangular discriminator, figures.
* :mod:`.run` -- the stage's steps; :mod:`.settings` -- their settings from the config.
"""
