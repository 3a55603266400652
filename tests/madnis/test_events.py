"""Events from a trained integrator (:mod:`lhcchain.madnis.events`): momenta (conservation, on-shell,
beams), the subprocess draw, the parquet table, LHE files read back with pylhe (ids, status, colour
flow) and the Drell-Yan LHE file showered by Pythia."""

from __future__ import annotations

import gzip
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pylhe
import pytest
import torch

from lhcchain.madnis.events import draw_subprocesses, event_momenta, events_table, write_lhe, write_parquet
from lhcchain.madnis.integrator import draw

from .conftest import msq, pt

N_EVENTS = 300


def _events(trained, seed: int) -> dict:
    """Points inside the cuts (weight > 0) of a MadNIS sample, their momenta and subprocesses."""
    torch.manual_seed(seed)
    sample = draw(trained.integrator, 2000, 2000)
    keep = sample.weights > 0
    x, channels = sample.x[keep][:N_EVENTS], sample.channels[keep][:N_EVENTS]
    assert x.shape[0] == N_EVENTS
    kin = event_momenta(trained.process, x, channels)
    subs = draw_subprocesses(trained.process, kin, np.random.default_rng(seed))
    return {"process": trained.process, "kin": kin, "subs": subs, "channels": channels.numpy(),
            "sigma": float(sample.weights.mean()), "error": float(sample.weights.std() / np.sqrt(2000))}


@pytest.fixture(scope="module")
def events(dy_trained, gg3g_trained) -> dict[str, dict]:
    return {"dy": _events(dy_trained, 21), "gg3g": _events(gg3g_trained, 22)}


@pytest.fixture(scope="module")
def lhe_files(events, tmp_path_factory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("madnis_lhe")
    out = {}
    for name, ev in events.items():
        path = folder / f"{name}.lhe"
        write_lhe(path, ev["process"], ev["kin"], ev["subs"], ev["sigma"], ev["error"], np.random.default_rng(5))
        out[name] = path
    return out


def _flavours(ev: dict) -> np.ndarray:
    process = ev["process"]
    return np.array([(*process.subprocesses[k].initial, *process.subprocesses[k].final) for k in ev["subs"]])


# ----------------------------------------------------------------------------- momenta


@pytest.mark.parametrize("name", ["dy", "gg3g"])
def test_momentum_conservation_and_on_shell(name, events):
    ev = events[name]
    process = ev["process"]
    for frame in ("lab", "partonic"):
        p = ev["kin"][frame].numpy()
        assert p.shape == (N_EVENTS, 2 + process.n_out, 4) and np.isfinite(p).all()
        incoming, outgoing = p[:, :2].sum(1), p[:, 2:].sum(1)
        scale = incoming[:, :1]  # total energy
        assert (np.abs(incoming - outgoing) <= 1e-6 * scale).all()
        # all legs of both processes are massless (partons, muons)
        assert (np.abs(msq(p)) <= 1e-6 * p[..., 0] ** 2).all()
        assert (p[..., 0] > 0).all()
    lab = ev["kin"]["lab"].numpy()
    # incoming partons along the beams, beam 1 along +z
    assert (pt(lab[:, :2]) <= 1e-9 * lab[:, :2, 0]).all()
    assert (lab[:, 0, 3] > 0).all() and (lab[:, 1, 3] < 0).all()
    if name == "gg3g":
        np.testing.assert_allclose(lab[:, :2, 0], process.sqrt_s / 2, rtol=1e-12)
        assert np.isnan(ev["kin"]["x1"].numpy()).all() and np.isnan(ev["kin"]["x2"].numpy()).all()
    else:
        x1, x2 = ev["kin"]["x1"].numpy(), ev["kin"]["x2"].numpy()
        assert ((x1 > 0) & (x1 < 1) & (x2 > 0) & (x2 < 1)).all()
        np.testing.assert_allclose(lab[:, 0, 0], x1 * process.sqrt_s / 2, rtol=1e-9)
        np.testing.assert_allclose(lab[:, 1, 0], x2 * process.sqrt_s / 2, rtol=1e-9)
        # 2 -> 2: s_hat = x1 x2 s = m_ll^2, within the process's m_ll window
        m_ll2 = msq(lab[:, 2] + lab[:, 3])
        np.testing.assert_allclose(m_ll2, x1 * x2 * process.sqrt_s**2, rtol=1e-8)
        assert ((np.sqrt(m_ll2) >= 60) & (np.sqrt(m_ll2) <= 500)).all()


def test_drell_yan_subprocesses(events):
    """Every drawn subprocess is q qbar or qbar q -> mu- mu+ with a quark and its own antiquark, and
    valence u ubar dominates (more u ubar than d dbar, more light than heavy quarks)."""
    ev = events["dy"]
    fl = _flavours(ev)
    assert (fl[:, 0] == -fl[:, 1]).all() and (np.abs(fl[:, 0]) <= 5).all() and (fl[:, 0] != 0).all()
    assert (fl[:, 2] == 13).all() and (fl[:, 3] == -13).all()
    quark = np.abs(fl[:, 0])
    counts = np.bincount(quark, minlength=6)
    assert counts[2] > counts[1] > counts[5]
    assert counts[1] + counts[2] > 0.6 * len(quark)
    # both orientations (quark from beam 1 or from beam 2) occur
    assert 0.2 < (fl[:, 0] > 0).mean() < 0.8


def test_subprocess_draw_follows_the_matrix_element(dy_process):
    """At one phase-space point drawn many times, subprocess k is picked with frequency
    S_k L_k |M_k|^2 / M, M the process's (grouped) matrix element."""
    gen = torch.Generator().manual_seed(7)
    point = dy_process.map_point(torch.rand(1, dy_process.n_random, generator=gen, dtype=torch.float64), 1)
    n = 20_000
    kin = {"lab": point.momenta.expand(n, -1, -1), "partonic": point.partonic.expand(n, -1, -1),
           "x1": point.x1.expand(n), "x2": point.x2.expand(n)}
    subs = draw_subprocesses(dy_process, kin, np.random.default_rng(8))
    me = dy_process.subprocess_matrix_elements(point.partonic)[0]
    lum = dy_process.parton_luminosities(point.partonic, point.x1, point.x2)[0]
    share = (dy_process.symmetry_factors * lum * me).numpy()
    total = float(dy_process.matrix_element(point.partonic, point.x1, point.x2)[0])
    np.testing.assert_allclose(share.sum(), total, rtol=1e-10)
    expected = n * share / total
    observed = np.bincount(subs, minlength=len(share))
    seen = expected > 0
    assert (observed[~seen] == 0).all()
    assert (np.abs(observed - expected)[seen] <= 5 * np.sqrt(expected[seen]) + 1).all()


# ----------------------------------------------------------------------------- parquet


@pytest.mark.parametrize("name", ["dy", "gg3g"])
def test_events_table_and_parquet(name, events, tmp_path):
    ev = events[name]
    process = ev["process"]
    legs = 2 + process.n_out
    weight = ev["sigma"] / N_EVENTS
    table = events_table(process, ev["kin"], ev["subs"], ev["channels"], weight)
    expected = {f"{c}_{i}" for i in range(legs) for c in ("pid", "e", "px", "py", "pz")} | {"x1", "x2", "channel", "weight"}
    assert set(table.column_names) == expected and table.num_rows == N_EVENTS
    path = tmp_path / "events.parquet"
    write_parquet(path, table, {"process": process.name, "cross_section_pb": ev["sigma"], "n": 3})
    back = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in back.schema.metadata.items()}
    assert meta["process"] == process.name and float(meta["cross_section_pb"]) == ev["sigma"] and meta["n"] == "3"
    data = back.to_pandas()
    lab = ev["kin"]["lab"].numpy()
    fl = _flavours(ev)
    for i in range(legs):
        for j, c in enumerate(("e", "px", "py", "pz")):
            np.testing.assert_array_equal(data[f"{c}_{i}"].to_numpy(), lab[:, i, j])
        np.testing.assert_array_equal(data[f"pid_{i}"].to_numpy(), fl[:, i])
    np.testing.assert_array_equal(data["channel"].to_numpy(), ev["channels"])
    assert (data["weight"] == weight).all()
    # momentum conservation from the columns alone
    for c in ("e", "px", "py", "pz"):
        sums = data[f"{c}_0"] + data[f"{c}_1"] - sum(data[f"{c}_{i}"] for i in range(2, legs))
        assert (np.abs(sums) <= 1e-6 * (data["e_0"] + data["e_1"])).all()
    if process.hadronic:
        np.testing.assert_allclose(data["x1"] * data["x2"] * process.sqrt_s**2,
                                   2 * (data["e_0"] * data["e_1"] - data["pz_0"] * data["pz_1"]), rtol=1e-8)
    else:
        assert data["x1"].isna().all() and data["x2"].isna().all()


# ----------------------------------------------------------------------------- LHE


def _read(path) -> pylhe.LHEFile:
    return pylhe.LHEFile.fromfile(str(path), generator=False)


def _is_quark(pid: int) -> bool:
    return 1 <= abs(pid) <= 6


@pytest.mark.parametrize("name", ["dy", "gg3g"])
def test_lhe_contents(name, events, lhe_files):
    ev = events[name]
    process = ev["process"]
    lhe = _read(lhe_files[name])
    init = lhe.init.initInfo
    beam = 2212 if name == "dy" else 21
    assert init.beamA == init.beamB == beam
    assert init.energyA == pytest.approx(process.sqrt_s / 2) and init.energyB == pytest.approx(process.sqrt_s / 2)
    assert init.weightingStrategy == 3 and init.numProcesses == 1
    proc = lhe.init.procInfo[0]
    assert proc.xSection == pytest.approx(ev["sigma"], rel=1e-6) and proc.error == pytest.approx(ev["error"], rel=1e-6)
    events_ = list(lhe.events)
    assert len(events_) == N_EVENTS
    lab = ev["kin"]["lab"].numpy()
    fl = _flavours(ev)
    legs = 2 + process.n_out
    for i, event in enumerate(events_):
        parts = event.particles
        assert event.eventinfo.nparticles == len(parts) == legs
        assert event.eventinfo.weight == pytest.approx(ev["sigma"] / N_EVENTS, rel=1e-6)
        assert [int(p.id) for p in parts] == fl[i].tolist()
        assert [int(p.status) for p in parts] == [-1, -1] + [1] * process.n_out
        p = np.array([[q.e, q.px, q.py, q.pz] for q in parts])
        np.testing.assert_allclose(p, lab[i], rtol=1e-7, atol=1e-6 * lab[i, :2, 0].sum())
        assert all(abs(q.m) < 1e-3 for q in parts)
        out = lab[i, 2:]
        expected_scale = np.sqrt(msq(lab[i, 0] + lab[i, 1])) if name == "dy" else pt(out).min()
        assert event.eventinfo.scale == pytest.approx(expected_scale, rel=1e-6)


@pytest.mark.parametrize("name", ["dy", "gg3g"])
def test_lhe_colour_flow(name, lhe_files):
    """Colour conservation per event (incoming colours and anticolours swapped), the right tags per
    particle type, and for g g -> g g g a single leading-colour trace through all five gluons."""
    for event in _read(lhe_files[name]).events:
        parts = event.particles
        colour_like, anticolour_like = Counter(), Counter()
        for q in parts:
            c, a, pid = int(q.color1), int(q.color2), int(q.id)
            if q.status == -1:
                c, a = a, c  # crossed to the final state
            colour_like[c] += 1
            anticolour_like[a] += 1
            if pid in (11, 13, -11, -13):
                assert q.color1 == q.color2 == 0
            elif _is_quark(pid):
                assert (q.color1 > 0, q.color2 > 0) == ((True, False) if pid > 0 else (False, True))
            else:
                assert pid == 21 and q.color1 > 0 and q.color2 > 0 and q.color1 != q.color2
        colour_like.pop(0, None)
        anticolour_like.pop(0, None)
        assert colour_like == anticolour_like
        assert all(v == 1 for v in colour_like.values())  # each line starts and ends once
        if name == "gg3g":
            crossed = [(int(q.color2), int(q.color1)) if q.status == -1 else (int(q.color1), int(q.color2)) for q in parts]
            by_anticolour = {a: i for i, (_, a) in enumerate(crossed)}
            seen, leg = [], 0
            for _ in range(len(parts)):
                seen.append(leg)
                leg = by_anticolour[crossed[leg][0]]
            assert leg == 0 and sorted(seen) == list(range(len(parts)))


def test_lhe_gzip(events, tmp_path):
    ev = events["gg3g"]
    path = tmp_path / "events.lhe.gz"
    write_lhe(path, ev["process"], ev["kin"], ev["subs"], ev["sigma"], ev["error"], np.random.default_rng(1))
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert b"<LesHouchesEvents" in gzip.decompress(path.read_bytes())[:200]
    assert pylhe.LHEFile.count_events(str(path)) == N_EVENTS


def test_pythia_showers_the_drell_yan_lhe(events, lhe_files):
    from lhcchain.simulate.pythia import GeneratorConfig, generate

    batches = list(generate(GeneratorConfig(process="lhe", n_events=5, seed=3, lhe_file=str(lhe_files["dy"]))))
    n = sum(len(b) for b in batches)
    assert n == 5
    lab = events["dy"]["kin"]["lab"].numpy()
    fl = _flavours(events["dy"])
    for i, event in enumerate(b for batch in batches for b in batch):
        hard = event["hard"]
        ids, status = np.asarray(hard.pdgId).tolist(), np.asarray(hard.status).tolist()
        assert ids[:2] == fl[i, :2].tolist() and status[:2] == [-1, -1]
        # the two muons of the LHE event come back as outgoing hard-process particles
        for leg, pid in ((2, 13), (3, -13)):
            k = [j for j, (q, s) in enumerate(zip(ids, status)) if q == pid and s == 1]
            assert len(k) == 1
            mu = hard[k[0]]
            # Pythia gives the massless LHE muons their mass (LesHouches:setLeptonMass), a ~1e-5 shift
            np.testing.assert_allclose([mu.E, mu.px, mu.py, mu.pz], lab[i, leg], rtol=1e-4, atol=1e-2)
        final = np.asarray(event["particles"].pdgId)
        assert (final == 13).sum() >= 1 and (final == -13).sum() >= 1
        assert len(final) > 4  # showered and hadronised (beam remnants, ISR)
    assert batches[0].attrs["cross_section_pb"] > 0
