"""Unfolding of reco-level pseudo-data to the particle level: binned IBU, OmniFold, cINN and iterative cINN."""
