"""Weight summaries (ESS, tail beyond the clip, normalisation, largest weights) and the NaN/inf stop."""

from __future__ import annotations

import numpy as np
import pytest

from lhcchain.errors import InputError
from lhcchain.reweight.weights import check_finite, summarise


def test_summary_counts_the_tail_without_clipping():
    w = np.r_[np.ones(96), [20.0, 30.0, 0.5, 0.5]]
    g = np.ones(100)
    keys = {"run": np.ones(100, int), "event": np.arange(100)}
    s = summarise(w, g, np.full(50, 2.0), clip=10.0, keys=keys)
    assert s["n_beyond_clip"] == 2 and s["fraction_beyond_clip"] == pytest.approx(0.02)
    assert s["weight_share_beyond_clip"] == pytest.approx(50.0 / w.sum())
    assert s["max"] == 30.0  # counted, not clipped
    assert s["ess"] == pytest.approx(w.sum() ** 2 / np.sum(w**2)) and s["ess_unweighted"] == pytest.approx(100.0)
    assert s["normalisation"] == pytest.approx(w.sum() / 100.0)
    assert s["largest"][0] == {"w": 30.0, "run": 1, "event": 97}
    assert s["quantiles"]["50%"] == 1.0


def test_negative_generator_weights_count_in_ess_and_normalisation():
    g = np.array([1.0, 1.0, -1.0, 1.0])
    s = summarise(np.ones(4), g, np.ones(2), clip=5.0)
    assert s["normalisation"] == pytest.approx(1.0) and s["ess"] == pytest.approx(1.0)


def test_nan_or_infinite_weight_names_pair_and_event():
    w = np.array([1.0, np.inf, np.nan])
    with pytest.raises(InputError, match=r"pair 'a_to_b': 2 weights are NaN or infinite; first: event 1 \(run=3, event=12\)"):
        check_finite(w, "a_to_b", {"run": np.array([3, 3, 3]), "event": np.array([11, 12, 13])})
