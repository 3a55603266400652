"""Score data: observables against hand-built momenta, the score against the physics core, bad input."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from scipy.stats import spearmanr

from lhcchain.errors import InputError
from lhcchain.physics import get_process
from lhcchain.symbolic.data import observables, read_events, score_data

from ..conftest import torch_threads
from .conftest import weighted_corr

MH = 125.0


def jet(pt: float, eta: float, phi: float) -> list[float]:
    """Massless four-momentum (E, px, py, pz) in GeV."""
    return [pt * math.cosh(eta), pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)]


def test_observables_by_hand():
    """Leading jet backward at phi = 3.0, subleading forward at phi = -3.0: p_T ordering for x1, x2 and
    the eta's, forward minus backward for delta_phi, wrapped: -3.0 - 3.0 + 2 pi."""
    higgs = [math.hypot(MH, 50.0), 50.0, 0.0, 0.0]
    beams = [[500.0, 0, 0, 500.0], [500.0, 0, 0, -500.0]]
    event = [beams[0], beams[1], jet(40.0, 2.5, -3.0), jet(80.0, -1.0, 3.0), higgs]
    obs = observables(torch.tensor([event], dtype=torch.float64), MH)
    assert obs["x1"][0] == pytest.approx(80.0 / MH) and obs["x2"][0] == pytest.approx(40.0 / MH)
    assert obs["eta1"][0] == pytest.approx(-1.0) and obs["eta2"][0] == pytest.approx(2.5)
    assert obs["delta_eta"][0] == pytest.approx(3.5)
    assert obs["delta_phi"][0] == pytest.approx(-6.0 + 2 * math.pi)
    assert obs["pt_h"][0] == pytest.approx(50.0) and obs["y_h"][0] == pytest.approx(0.0, abs=1e-12)
    # Swapping the jets' order in the event changes nothing.
    swapped = [event[0], event[1], event[3], event[2], event[4]]
    again = observables(torch.tensor([swapped], dtype=torch.float64), MH)
    assert all(again[k][0] == pytest.approx(obs[k][0]) for k in obs)


def test_score_against_physics_core(wbf, wbf_events):
    events, data = wbf_events
    assert np.allclose(data["t"], data["B"] / data["A"])
    with torch_threads(1):
        score = wbf.score(events["momenta"], events["x1"], events["x2"]).numpy()
    assert np.allclose(data["t"], score, rtol=1e-12)
    # B is parity-odd: E[t] = 0 over the SM sample (within 5 standard errors), and t anticorrelates
    # with p_T,1 p_T,2 sin(delta_phi) (README's physics table: -0.973 on a larger sample).
    assert abs(data["t"].mean()) < 5 * data["t"].std() / math.sqrt(len(data["t"]))
    cp_odd = data["x1"] * data["x2"] * np.sin(data["delta_phi"])
    assert weighted_corr(cp_odd, data["t"]) < -0.9
    # The CP-even p_T,1 p_T,2 is uncorrelated with t; rank correlation, since a few events in the
    # tails of x1 x2 t dominate Pearson's at this sample size.
    assert abs(spearmanr(data["x1"] * data["x2"], data["t"])[0]) < 0.05
    assert events["cross_section_pb"] == pytest.approx(2.80, rel=0.05)  # README: MadNIS 2.7992 +- 0.0019 pb


def test_bad_input(wbf, wbf_events, tmp_path):
    events, _ = wbf_events
    with pytest.raises(InputError, match="no CP-odd term"):
        score_data(get_process("drell_yan"), events)
    with pytest.raises(InputError, match="f_wwt"):
        score_data(get_process("wbf_higgs", f_wwt=1.0), events)
    outside = dict(events, momenta=events["momenta"][:5].clone())
    outside["momenta"][2, 2:4, 1:3] = 0.0  # jets along the beam: outside the PDFs' reach / A = 0
    outside["momenta"][2, 2:4, 3] = outside["momenta"][2, 2:4, 0]
    with pytest.raises(InputError, match="first event 2"):
        score_data(wbf, dict(outside, x1=events["x1"][:5], x2=events["x2"][:5]))
    path = tmp_path / "events.parquet"
    pq.write_table(pa.table({"pid_0": np.array([2])}), path)
    with pytest.raises(InputError, match="missing column"):
        read_events(path)
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="cannot read"):
        read_events(tmp_path / "junk.parquet")
