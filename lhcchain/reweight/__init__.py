"""Stage ``reweight``: classifier density ratios between two samples, with calibrated, checked weights.

Modules (torch is needed by :mod:`.classifier` and :mod:`.run`):

* :mod:`.classifier` -- the project's one density-ratio classifier: class-stratified k-fold
  cross-fitting, generator weights in the loss, class balance by weight sums, held-out calibration
  (isotonic or temperature, applied only when it lowers the held-out loss), the ensemble of the k
  networks for new events, ``w = D / (1 - D)``; the honest two-sample AUC with its error
  (:func:`~.classifier.two_sample_auc`). ``generate``'s evaluation and ``unfold`` use it too.
* :mod:`.weights` -- weight checks (NaN/inf stop the run) and summaries: quantiles, largest weights,
  effective sample size, the tail beyond the configured clip (counted, never clipped), normalisation.
* :mod:`.closure` -- feature histograms of source, reweighted source and target with ratio panels and
  statistical bands, chi2/ndf per feature before and after.
* :mod:`.run` -- the stage's steps for one pair (``train``, ``evaluate``) on prepared samples.

Convention: class 1 is the *target* (numerator), class 0 the *source*; source events weighted by
``w = D / (1 - D)`` follow the target.
"""
