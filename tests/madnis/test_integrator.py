"""The MadNIS integrator (:mod:`lhcchain.madnis.integrator`): settings, the checked integrand (NaN,
negative and cut points), training summaries, checkpoints, sampling, and the VEGAS / flat baselines
against MadNIS and plain Monte Carlo."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from lhcchain.errors import InputError
from lhcchain.config import resolve_settings
from lhcchain.madnis.integrator import CheckedIntegrand, draw, flat_sampler, load_integrator, save_integrator, train_vegas
from lhcchain.physics.processes import build_process

from .conftest import eta, msq, phi, pt

# ----------------------------------------------------------------------------- settings


def test_resolve_settings_rejects_unknown_keys():
    with pytest.raises(InputError, match=r"madnis.training: unknown key\(s\) \['stepz'\]"):
        resolve_settings({"stepz": 3}, "madnis.training")
    with pytest.raises(InputError, match="madnis.training.vegas: unknown.*bogus"):
        resolve_settings({"vegas": {"bins": 10, "bogus": 1}}, "madnis.training")


# ----------------------------------------------------------------------------- checked integrand


def _points(process, n: int, channel: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, process.n_random, generator=gen, dtype=torch.float64), torch.full((n,), channel)


@pytest.mark.parametrize("bad, word", [(float("nan"), "NaN"), (-1.0, "negative")])
def test_bad_matrix_element_names_process_and_channel(dy_process, bad, word):
    def fake(lab, partonic, x1, x2):
        return torch.full((lab.shape[0],), bad, dtype=lab.dtype)

    function = CheckedIntegrand(dy_process, fake)
    channel = dy_process.channel_names.index("Zprime")
    x, c = _points(dy_process, 64, channel, seed=1)
    with pytest.raises(InputError) as info:
        function(x, c)
    message = str(info.value)
    assert repr(dy_process.name) in message and "'Zprime'" in message and word in message
    assert "'photon'" not in message


def test_bad_matrix_element_at_some_points_only(gg3g_process):
    """A matrix element that is NaN only for some events (leading gluon along +z) is caught too."""

    def fake(lab, partonic, x1, x2):
        value = torch.ones(lab.shape[0], dtype=lab.dtype)
        return torch.where(lab[:, 2, 3] > 0, torch.full_like(value, float("nan")), value)

    x, c = _points(gg3g_process, 200, 0, seed=2)
    with pytest.raises(InputError, match=r"'gg_3g'.*'rambo'.*NaN"):
        CheckedIntegrand(gg3g_process, fake)(x, c)


def test_replacement_matrix_element_scales_the_integrand(dy_process):
    """A replacement ``(lab, partonic, x1, x2) -> 2.5 x exact`` gives 2.5 x the exact weights, and
    calls are counted."""
    exact = CheckedIntegrand(dy_process)
    twice = CheckedIntegrand(dy_process, lambda lab, p, x1, x2: 2.5 * dy_process.matrix_element(p, x1, x2))
    x = torch.rand(300, dy_process.n_random, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    c = torch.arange(300) % dy_process.n_channels
    f, alpha = exact(x, c)
    g, beta = twice(x, c)
    assert exact.calls == 300 and twice.calls == 300
    exact(x[:10], 1)  # an int channel works as well
    assert exact.calls == 310
    assert (f > 0).all() and torch.allclose(g, 2.5 * f, rtol=1e-12)
    assert torch.allclose(alpha, beta) and torch.allclose(alpha.sum(-1), torch.ones(300, dtype=alpha.dtype))


def _gluon_cuts(p: np.ndarray, pt_min: float, eta_max: float, dr_min: float) -> np.ndarray:
    out = p[:, 2:]
    ok = (pt(out) > pt_min).all(-1) & (np.abs(eta(out)) < eta_max).all(-1)
    e, f = eta(out), phi(out)
    for i in range(out.shape[1]):
        for j in range(i + 1, out.shape[1]):
            dphi = np.abs(f[:, i] - f[:, j])
            dphi = np.minimum(dphi, 2 * np.pi - dphi)
            ok &= (e[:, i] - e[:, j]) ** 2 + dphi**2 > dr_min**2
    return ok


def test_points_outside_cuts_have_zero_weight(gg3g_process, gg3g_spec):
    process = gg3g_process
    x, c = _points(process, 4000, 0, seed=4)
    f, _ = CheckedIntegrand(process)(x, c)
    p = process.map_point(x, 0).momenta.numpy()
    o = gg3g_spec["options"]
    inside = _gluon_cuts(p, o["pt_min"], o["eta_max"], o["delta_r_min"])
    assert 0.05 < inside.mean() < 0.99  # both kinds of points are tested
    f = f.numpy()
    assert np.isfinite(f).all()
    assert (f[~inside] == 0).all()
    assert (f[inside] > 0).all()


def test_lepton_cuts_give_zero_weight(dy_spec):
    spec = copy.deepcopy(dy_spec)
    spec["options"].update(lepton_pt_min=30.0, lepton_eta_max=2.0)
    process = build_process(spec, "cpu", 1)
    function = CheckedIntegrand(process)
    for channel in range(process.n_channels):
        x, c = _points(process, 1000, channel, seed=5 + channel)
        f, _ = function(x, c)
        p = process.map_point(x, channel).momenta.numpy()
        m_ll = np.sqrt(msq(p[:, 2] + p[:, 3]))
        inside = (pt(p[:, 2:]) > 30).all(-1) & (np.abs(eta(p[:, 2:])) < 2).all(-1) & (m_ll >= 60) & (m_ll <= 500)
        assert 0.05 < inside.mean() < 0.99
        assert (f.numpy()[~inside] == 0).all() and (f.numpy()[inside] > 0).all()


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize("name", ["dy", "gg3g"])
def test_train_summary_counts_calls(name, dy_trained, gg3g_trained):
    t = {"dy": dy_trained, "gg3g": gg3g_trained}[name]
    s, summary = t.settings, t.summary
    assert summary["train_steps"] == s["steps"] == len(summary["loss"])
    assert [step for step, _, _ in summary["loss"]] == list(range(s["steps"]))
    assert all(math.isfinite(loss) for _, loss, _ in summary["loss"])
    online = sum(1 for _, _, buffered in summary["loss"] if not buffered)
    assert online >= 1
    # VEGAS pre-training calls every channel samples_per_channel times per iteration; each online
    # step calls the integrand batch_size times, buffered steps never
    vegas_calls = s["vegas"]["iterations"] * s["vegas"]["samples_per_channel"] * t.process.n_channels
    assert summary["train_calls"] == vegas_calls + online * s["batch_size"]
    assert summary["active_channels"] == t.process.n_channels
    assert summary["train_time_s"] > 0


# ----------------------------------------------------------------------------- checkpoints and sampling


def test_checkpoint_round_trip(dy_trained, tmp_path):
    t = dy_trained
    path = tmp_path / "dy.pt"
    save_integrator(str(path), t.integrator, t.spec, t.settings, {"train_calls": 1})
    integrator, function, payload = load_integrator(str(path), "cpu", 1)
    assert payload["settings"] == t.settings and payload["process"] == t.spec and payload["summary"] == {"train_calls": 1}
    assert function.process.name == t.process.name and function.process.channel_names == t.process.channel_names
    torch.manual_seed(5)
    a = draw(t.integrator, 3000, 1000)
    torch.manual_seed(5)
    b = draw(integrator, 3000, 1000)
    assert torch.equal(a.x, b.x) and torch.equal(a.channels, b.channels)
    assert torch.allclose(a.weights, b.weights, rtol=1e-12, atol=0)
    assert a.weights.mean().item() == pytest.approx(b.weights.mean().item(), rel=1e-12)


def test_load_integrator_rejects_bad_files(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(InputError, match="cannot be read"):
        load_integrator(str(junk), "cpu", 1)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(InputError, match="not a MadNIS integrator checkpoint"):
        load_integrator(str(other), "cpu", 1)
    with pytest.raises(InputError):
        load_integrator(str(tmp_path / "missing.pt"), "cpu", 1)


def test_draw_returns_requested_points(dy_trained):
    t = dy_trained
    nc = t.process.n_channels
    sample = draw(t.integrator, 1234, 500)
    assert sample.x.shape == (1234, t.process.n_random) and sample.weights.shape == (1234,)
    assert ((sample.x >= 0) & (sample.x <= 1)).all()
    assert set(sample.channels.tolist()) <= set(range(nc))
    assert (sample.weights >= 0).all() and torch.isfinite(sample.weights).all()
    # uniform mode: every batch split evenly over the channels
    uniform = draw(t.integrator, 1500, 300, mode="uniform")
    counts = np.bincount(uniform.channels.numpy(), minlength=nc)
    assert counts.sum() == 1500 and (np.abs(counts - 1500 / nc) <= 5 * nc).all()
    flat = draw(flat_sampler(t.function, t.settings, seed=3), 999, 400, mode="uniform")
    assert flat.x.shape[0] == 999 and flat.weights.shape == (999,)


# ----------------------------------------------------------------------------- baselines


def _estimate(weights: torch.Tensor) -> tuple[float, float]:
    """Mean and its (unstratified, hence conservative) standard error."""
    w = weights.numpy().astype(np.float64)
    return float(w.mean()), float(w.std(ddof=1) / math.sqrt(w.size))


@pytest.fixture(scope="module")
def baselines(dy_trained, gg3g_trained):
    out = {}
    for name, t in {"dy": dy_trained, "gg3g": gg3g_trained}.items():
        vegas, vsummary = train_vegas(t.function, t.settings, t.summary["train_calls"], seed=11)
        torch.manual_seed(12)
        out[name] = {
            "madnis": _estimate(draw(t.integrator, 20_000, 5000).weights),
            "vegas": _estimate(draw(vegas, 20_000, 5000).weights),
            "flat": _estimate(draw(flat_sampler(t.function, t.settings, seed=13), 20_000, 5000, mode="uniform").weights),
            "plain": t.process.cross_section(20_000, seed=14),
            "vegas_summary": vsummary,
        }
    return out


@pytest.mark.parametrize("name", ["dy", "gg3g"])
def test_vegas_baseline_uses_the_same_calls(name, baselines, dy_trained, gg3g_trained):
    t = {"dy": dy_trained, "gg3g": gg3g_trained}[name]
    target, got = t.summary["train_calls"], baselines[name]["vegas_summary"]["train_calls"]
    assert target - 2 * t.process.n_channels < got <= target
    assert baselines[name]["vegas_summary"]["iterations"] >= 1


@pytest.mark.parametrize("name", ["dy", "gg3g"])
def test_cross_sections_agree(name, baselines):
    """MadNIS, VEGAS, flat sampling and plain multi-channel Monte Carlo (no MadNIS) agree within
    their combined errors."""
    b = baselines[name]
    estimates = {k: b[k] for k in ("madnis", "vegas", "flat", "plain")}
    for sigma, err in estimates.values():
        assert sigma > 0 and 0 < err < 0.5 * sigma
    keys = list(estimates)
    for i, a in enumerate(keys):
        for c in keys[i + 1:]:
            (s1, e1), (s2, e2) = estimates[a], estimates[c]
            assert abs(s1 - s2) / math.hypot(e1, e2) < 5, (a, c, estimates)


def test_trained_samplers_beat_flat_on_drell_yan(baselines):
    """The Z peak is mapped by VEGAS-initialised MadNIS and by VEGAS: smaller errors than flat."""
    b = baselines["dy"]
    assert b["madnis"][1] < b["flat"][1] and b["vegas"][1] < b["flat"][1]
