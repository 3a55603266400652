"""Pairs and pseudo-data from prepared parquet files: pass masks, fiducial region and bad input."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lhcchain.errors import InputError
from lhcchain.unfold.data import load_input

OBS = ["j1_pt", "ptll"]
SETTINGS = {"sim": "nominal", "data": "alt_tune", "observables": OBS}


def write_sample(d, name, n=50, seed=0, selection=None, reco_pass=True, nan_col=None):
    """A prepared-like sample: parquet with pass columns and observables, and its metadata.json."""
    rng = np.random.default_rng(seed)
    cols = {"weight": np.ones(n), "particle_pass": rng.random(n) < 0.9, "reco_pass": (rng.random(n) < 0.8) & reco_pass}
    for lv in ("particle", "reco"):
        for o in OBS:
            cols[f"{lv}_{o}"] = rng.exponential(30.0, n) + 20
    cols["particle_j1_pt"][:5] = np.nan  # no jet: outside the fiducial region
    if nan_col:
        cols[nan_col][:] = np.nan
    (d / name).mkdir()
    pq.write_table(pa.table(cols), d / name / "train.parquet")
    meta = {"levels": ["particle", "reco"], "selection": selection or {"mll_min": 76.0, "mll_max": 106.0}, "max_jets": 3}
    (d / name / "metadata.json").write_text(json.dumps(meta))
    return [d / name / "train.parquet"], d / name / "metadata.json"


def test_masks_and_fiducial(tmp_path):
    sim, sm = write_sample(tmp_path, "nominal")
    data, dm = write_sample(tmp_path, "alt_tune", seed=1)
    inp = load_input(sim, data, sm, dm, SETTINGS)
    ev = inp.sim
    assert np.isnan(ev.particle[~ev.pass_particle]).all() and np.isfinite(ev.particle[ev.pass_particle]).all()
    assert np.isnan(ev.reco[~ev.pass_reco]).all() and (ev.pass_particle | ev.pass_reco).all()
    c = ev.counts()
    assert c["pairs"] > 0 and c["particle_only"] > 0 and c["reco_only"] > 0
    assert len(inp.truth) == inp.data.pass_particle.sum()


def test_no_reco_events(tmp_path):
    sim, sm = write_sample(tmp_path, "nominal", reco_pass=False)
    data, dm = write_sample(tmp_path, "alt_tune", seed=1)
    with pytest.raises(InputError, match="nominal.*no event in the reco-level"):
        load_input(sim, data, sm, dm, SETTINGS)


def test_missing_and_all_nan_observable(tmp_path):
    sim, sm = write_sample(tmp_path, "nominal", nan_col="reco_ptll")
    data, dm = write_sample(tmp_path, "alt_tune", seed=1)
    with pytest.raises(InputError, match="reco_ptll is NaN in every event"):
        load_input(sim, data, sm, dm, SETTINGS)
    with pytest.raises(InputError, match=r"lacks columns \[.particle_j1_girth., .reco_j1_girth.\]"):
        load_input(sim, data, sm, dm, {**SETTINGS, "observables": [*OBS, "j1_girth"]})


def test_different_selection(tmp_path):
    sim, sm = write_sample(tmp_path, "nominal")
    data, dm = write_sample(tmp_path, "alt_tune", seed=1, selection={"mll_min": 60.0, "mll_max": 106.0})
    with pytest.raises(InputError, match="different selection.*mll_min"):
        load_input(sim, data, sm, dm, SETTINGS)
