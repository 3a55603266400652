"""Reading prepared and LHE events, the per-particle representation, its transform and the prepare-schema writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import lhcchain.prepare.run as prepare_run
from lhcchain.errors import InputError
from lhcchain.generate.data import (Transform, build_events, dataset_info, delta_r_min, layout, load_events, massless_mll,
                                    read_columns, to_columns)
from lhcchain.generate.sample import canonical_leptons

from .conftest import ROOT, skip_figures

POWHEG = "pylhe-testfile-powheg-box-v2-Zj.lhe"
MULT = (1, 2, 3)
CUTS = {"lepton_pt_min": 20.0, "jet_pt_min": 20.0}


def test_representation_matches_prepared_columns(prepared: Path):
    ev = load_events(prepared / "train.parquet", "particle", MULT, 3)
    t = pq.read_table(prepared / "train.parquet").to_pydict()
    cols = {k: np.array(v, dtype=np.float64 if k.endswith(("pt", "eta", "phi", "mass")) else None) for k, v in t.items()}
    keep = cols["particle_pass"] & np.isin(cols["particle_n_jets"], MULT)
    assert len(ev) == keep.sum() > 500
    assert layout(2)[5:9] == [("j1", "pt"), ("j1", "eta"), ("j1", "dphi"), ("j1", "mass")]
    np.testing.assert_allclose(ev.x[:, 0], cols["particle_l1_pt"][keep])
    dphi = (cols["particle_j1_phi"][keep] - cols["particle_l1_phi"][keep] + np.pi) % (2 * np.pi) - np.pi
    np.testing.assert_allclose(ev.x[:, 7], dphi, atol=1e-6)
    for m in MULT:  # NaN exactly beyond the event's dimensions
        rows = ev.x[ev.n_jets == m]
        assert np.isfinite(rows[:, : 5 + 4 * m]).all() and np.isnan(rows[:, 5 + 4 * m:]).all()
    assert np.array_equal(ev.mask(), np.isfinite(ev.x))


@pytest.mark.parametrize("dilepton_mass, mll_peak", [(False, None), (True, None), (True, (91.1876, 2.4952))])
def test_transform_round_trip_and_standardisation(prepared: Path, dilepton_mass: bool, mll_peak: tuple[float, float] | None):
    ev = load_events(prepared / "train.parquet", "particle", MULT, 3)
    info = dataset_info(prepared / "metadata.json")
    sel = info["selection"]
    tr = Transform(3, sel, dilepton_mass, mll_peak).fit(ev)
    z = tr.forward(ev.x)
    present = np.isfinite(ev.x)
    assert np.array_equal(np.isfinite(z), present)
    for d in range(z.shape[1]):
        assert abs(np.mean(z[present[:, d], d])) < 1e-9 and abs(np.std(z[present[:, d], d]) - 1) < 1e-9
    back = tr.inverse(np.nan_to_num(z))
    np.testing.assert_allclose(back[present], ev.x[present], rtol=1e-9, atol=1e-9)
    restored = Transform.from_state(tr.state())
    np.testing.assert_array_equal(restored.forward(ev.x), z)
    if dilepton_mass and mll_peak is None:  # the l1 coordinate is the (massless) dilepton mass: peaked at the Z
        mll = z[:, 0] * tr.std[0] + tr.mean[0]
        np.testing.assert_allclose(mll, massless_mll(*(ev.x[:, i] for i in range(5))), rtol=1e-9)
        assert np.median(np.abs(mll - 91.19)) < 3.0
    # eta enters as atanh(eta / eta_max): the acceptance edge is out of reach of the network space
    np.testing.assert_allclose(sel["lepton_eta_max"] * np.tanh(z[:, 3] * tr.std[3] + tr.mean[3]), ev.x[:, 3], rtol=1e-9, atol=1e-9)
    far = tr.inverse(np.full((2, z.shape[1]), 5.0) * np.array([[1.0], [-1.0]]))
    assert (np.abs(far[:, [1, 3]]) < sel["lepton_eta_max"]).all() and (np.abs(far[:, 6::4]) < sel["jet_eta_max"]).all()
    # pt at or below the threshold has no image under log(pt - pt_min)
    bad = ev.x.copy()
    bad[0, 2] = info["selection"]["lepton_pt_min"]
    with pytest.raises(InputError, match="l2 pt"):
        tr.forward(bad, "somefile.parquet")


def test_constant_dimensions_are_held():
    x = np.array([[30.0, 0.1, 25.0, 0.2, 1.0, 40.0, 1.0, 2.0, 0.0], [50.0, -0.5, 22.0, 1.2, -2.0, 30.0, -1.0, 0.5, 0.0],
                  [45.0, 0.7, 21.0, -1.0, 3.0, 25.0, 0.3, -2.5, 0.0]])
    from lhcchain.generate.data import Events

    ev = Events(x, np.ones(3, int), np.full(3, 13), np.zeros(3), np.ones(3), "toy")
    tr = Transform(1, {"lepton_pt_min": 20.0, "jet_pt_min": 20.0}).fit(ev)
    assert tr.constant.tolist() == [False] * 8 + [True]
    out = tr.inverse(np.random.default_rng(1).normal(size=(5, 9)))
    assert np.all(out[:, 8] == 0.0) and np.all(out[:, 0] > 20.0) and np.all(np.abs(out[:, 4]) < np.pi)


def test_columns_round_trip_through_the_representation(prepared: Path):
    """Kinematics -> representation -> prepare columns reproduces prepare's own dilepton and dijet observables."""
    src = prepared / "test.parquet"
    ev = load_events(src, "particle", MULT, 3)
    t = pq.read_table(src)
    cols = {k: t.column(k).to_numpy(zero_copy_only=False) for k in t.column_names}
    keep = cols["particle_pass"] & np.isin(cols["particle_n_jets"], MULT)
    out = to_columns(ev.x, ev.n_jets, ev.pdg, ev.phi, "particle", 3)
    for name, tol in (("mll", 2e-3), ("ptll", 1e-3), ("yll", 1e-4), ("phill", 1e-4), ("ht", 1e-4), ("mjj", 1e-3),
                      ("drjj", 1e-4), ("j3_pt", 1e-6), ("j2_phi", 1e-5), ("l2_phi", 1e-5), ("l2_pdgId", 0)):
        np.testing.assert_allclose(out[f"particle_{name}"], cols[f"particle_{name}"][keep], rtol=tol, atol=tol, equal_nan=True,
                                   err_msg=name)
    prepared_schema = pq.read_schema(src)
    for name, values in out.items():
        assert pa.array(values).type == prepared_schema.field(name).type, name


def test_canonical_leptons_keeps_the_event():
    rng = np.random.default_rng(2)
    n = 200
    x = np.column_stack([rng.uniform(20, 80, n), rng.normal(size=n), rng.uniform(20, 80, n), rng.normal(size=n),
                         rng.uniform(-np.pi, np.pi, n), rng.uniform(20, 80, n), rng.normal(size=n), rng.uniform(-np.pi, np.pi, n),
                         rng.uniform(1, 10, n)])
    pdg, phi = rng.choice([11, -13], n), rng.uniform(-np.pi, np.pi, n)
    nj = np.ones(n, int)
    y, pdg2, phi2 = canonical_leptons(x, pdg, phi)
    assert np.all(y[:, 0] >= y[:, 2]) and (x[:, 2] > x[:, 0]).any()
    a, b = to_columns(x, nj, pdg, phi, "particle", 1), to_columns(y, nj, pdg2, phi2, "particle", 1)
    swap = x[:, 2] > x[:, 0]
    for f in ("pt", "eta", "phi", "pdgId"):
        np.testing.assert_allclose(b[f"particle_l1_{f}"][swap], a[f"particle_l2_{f}"][swap], atol=1e-5)
        np.testing.assert_allclose(b[f"particle_l1_{f}"][~swap], a[f"particle_l1_{f}"][~swap], atol=1e-5)
    for name in ("particle_j1_phi", "particle_mll", "particle_ptll"):
        np.testing.assert_allclose(b[name], a[name], rtol=1e-5, atol=1e-4)


def test_delta_r_min_against_explicit_loop():
    rng = np.random.default_rng(4)
    n = 50
    nj = rng.integers(1, 4, n)
    x = rng.normal(size=(n, 17)) * 2
    x[np.arange(17)[None, :] >= (5 + 4 * nj)[:, None]] = np.nan
    jj, jl = delta_r_min(x, nj)
    for i in range(n):
        eta = [x[i, 5 + 4 * k + 1] for k in range(nj[i])]
        phi = [x[i, 5 + 4 * k + 2] for k in range(nj[i])]
        lep = [(x[i, 1], 0.0), (x[i, 3], x[i, 4])]

        def dr(e1, p1, e2, p2):
            return np.hypot(e1 - e2, (p1 - p2 + np.pi) % (2 * np.pi) - np.pi)

        pairs = [dr(eta[a], phi[a], eta[b], phi[b]) for a in range(nj[i]) for b in range(a + 1, nj[i])]
        assert jj[i] == pytest.approx(min(pairs) if pairs else np.inf)
        assert jl[i] == pytest.approx(min(dr(e, p, le, lp) for e, p in zip(eta, phi) for le, lp in lep))


def test_missing_column_names_file_and_column(prepared: Path, tmp_path: Path):
    t = pq.read_table(prepared / "train.parquet").drop(["particle_j2_eta"])
    bad = tmp_path / "broken.parquet"
    pq.write_table(t, bad)
    with pytest.raises(InputError, match=r"broken\.parquet.*particle_j2_eta"):
        load_events(bad, "particle", MULT, 3)
    with pytest.raises(InputError, match=r"broken\.parquet.*reco_pass"):
        read_columns(bad, "reco", 3)
    with pytest.raises(InputError, match="exceeds"):
        load_events(prepared / "train.parquet", "particle", (1, 4), 3)
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(InputError, match=r"junk\.parquet"):
        load_events(tmp_path / "junk.parquet", "particle", MULT, 3)


def test_non_finite_kinematics_names_column(prepared: Path):
    cols = read_columns(prepared / "train.parquet", "particle", 3)
    one_jet = np.flatnonzero(cols["particle_pass"] & (cols["particle_n_jets"] == 1))[0]
    cols["particle_j1_mass"] = cols["particle_j1_mass"].copy()
    cols["particle_j1_mass"][one_jet] = np.nan
    with pytest.raises(InputError, match="src.parquet: column 'particle_j1_mass' is not finite in 1"):
        build_events(cols, "particle", MULT, "src.parquet")


def test_lhe_input_matches_prepare_output(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An LHE file read directly (prepare readers + selection) gives the events prepare writes for it."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["prepare"]
    cfg.update(levels=["parton"], split={"train": 1.0, "val": 0.0, "test": 0.0})
    cfg["selection"].update(mll_min=None, mll_max=None)
    monkeypatch.setattr(prepare_run, "_figures", skip_figures)
    outs = prepare_run.output_paths(tmp_path / "p")
    prepare_run.prepare("powheg", [data_dir / POWHEG], outs, cfg, seed=1)
    direct = load_events(data_dir / POWHEG, "parton", (0, 1), 3, cfg["selection"])
    via_prepare = load_events(outs["train"], "parton", (0, 1), 3)
    assert len(direct) == len(via_prepare) > 20
    np.testing.assert_allclose(direct.x, via_prepare.x, rtol=1e-6, equal_nan=True)
    with pytest.raises(InputError, match="parton level only"):
        load_events(data_dir / POWHEG, "particle", (1,), 3, cfg["selection"])


def test_breit_wigner_logit_makes_a_resonance_logistic():
    """Masses drawn from a Breit-Wigner in m^2 (numpy's Cauchy sampler) within a window map to a standard
    logistic variable, and the inverse restores them; masses outside the window map to NaN."""
    from scipy import stats

    from lhcchain.generate.data import breit_wigner_logit, breit_wigner_logit_inverse

    mass, width, lo, hi = 91.1876, 2.4952, 60.0, 120.0
    s = mass**2 + mass * width * np.random.default_rng(3).standard_cauchy(400_000)
    m = np.sqrt(s[(s > lo**2) & (s < hi**2)])
    c = breit_wigner_logit(m, mass, width, lo, hi)
    assert stats.kstest(c, stats.logistic.cdf).pvalue > 1e-3
    assert stats.kstest(c[:20_000], stats.norm(scale=np.pi / np.sqrt(3)).cdf).pvalue < 1e-3  # the test can tell
    np.testing.assert_allclose(breit_wigner_logit_inverse(c, mass, width, lo, hi), m, rtol=1e-9)
    assert np.isnan(breit_wigner_logit(np.array([59.0, 121.0]), mass, width, lo, hi)).all()
    # no upper edge: the map still covers every mass above lo
    assert np.isfinite(breit_wigner_logit(np.array([60.5, 500.0, 5000.0]), mass, width, lo, np.inf)).all()


def test_transform_mll_peak_needs_the_mass_coordinate_and_masses_in_the_window():
    with pytest.raises(InputError, match="dilepton_mass"):
        Transform(1, CUTS, False, (91.19, 2.5))
    with pytest.raises(InputError, match="mll_peak"):
        Transform(1, CUTS, True, (91.19,))
    from lhcchain.generate.data import Events

    x = np.array([[40.0, 0.1, 30.0, 0.2, 3.0, 40.0, 1.0, 2.0, 5.0]])  # m_ll ~ 70 GeV
    ev = Events(x, np.ones(1, int), np.full(1, 13), np.zeros(1), np.ones(1), "toy.parquet")
    with pytest.raises(InputError, match="toy.parquet: dilepton mass outside"):
        Transform(1, {**CUTS, "mll_min": 80.0, "mll_max": 100.0}, True, (91.19, 2.5)).fit(ev)
