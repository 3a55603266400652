"""The Process interface: registry, grouping of subprocesses, cuts, channels, MadNIS hook, dtypes and devices."""

from __future__ import annotations

import math

import pytest
import torch

from lhcchain.errors import InputError
from lhcchain.physics.electroweak import ElectroweakParameters, alpha_em_pythia
from lhcchain.physics.process import GEV2_TO_PB, Process, pseudorapidity, transverse_momentum
from lhcchain.physics.processes import WBFHiggs, get_process, process_names
from lhcchain.physics.wbf import wbf_me2

from .conftest import boost_z, msq, random_rotation, rotate

EW = ElectroweakParameters()
NAMES = ("drell_yan", "wbf_higgs", "gg_3g", "gg_4g", "gg_5g")
# Cheap instances per name: small batches keep gg_4g and gg_5g (Berends-Giele, full colour) quick.
BATCH = {"drell_yan": 2000, "wbf_higgs": 600, "gg_3g": 600, "gg_4g": 120, "gg_5g": 80}


@pytest.fixture(scope="module")
def processes() -> dict[str, Process]:
    return {name: get_process(name) for name in NAMES}


def uniform(n: int, dim: int, seed: int) -> torch.Tensor:
    return torch.rand(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ------------------------------------------------------------------ registry


def test_every_name_builds_a_process(processes):
    assert set(process_names()) == set(NAMES)
    expected = {  # n_out, n_random, channels, hadronic
        "drell_yan": (2, 4, ("photon", "Z", "Zprime"), True),
        "wbf_higgs": (3, 7, ("WW_A", "WW_B", "ZZ_A", "ZZ_B"), True),
        "gg_3g": (3, 5, ("rambo",), False),
        "gg_4g": (4, 8, ("rambo",), False),
        "gg_5g": (5, 11, ("rambo",), False),
    }
    for name, proc in processes.items():
        n_out, n_random, channels, hadronic = expected[name]
        assert proc.name == name and proc.n_out == n_out and proc.n_random == n_random
        assert proc.channel_names == channels and proc.n_channels == len(channels)
        assert proc.hadronic == hadronic and (proc.pdf is not None) == hadronic
        assert proc.dtype == torch.float64 and proc.device == torch.device("cpu")
        assert all(len(s.final) == n_out for s in proc.subprocesses)


def test_unknown_name_and_option_are_named():
    with pytest.raises(InputError) as err:
        get_process("drell_yann")
    for name in NAMES:
        assert name in str(err.value)
    with pytest.raises(InputError, match="mll_min"):
        get_process("drell_yan", mll_low=50.0)
    with pytest.raises(InputError, match="m_ll_min.*renamed.*mll_min"):
        get_process("drell_yan", m_ll_min=50.0)
    with pytest.raises(InputError, match="exchange"):
        get_process("wbf_higgs", exchange="photon")
    with pytest.raises(InputError, match="dtype"):
        get_process("gg_3g", dtype=torch.float16)
    with pytest.raises(InputError, match="mll_min < mll_max"):
        get_process("drell_yan", mll_min=120.0, mll_max=60.0)


def test_subprocesses_and_symmetry_factors(processes):
    dy = processes["drell_yan"]
    assert sorted(s.initial for s in dy.subprocesses) == sorted(
        [(q, -q) for q in range(1, 6)] + [(-q, q) for q in range(1, 6)]
    )
    assert all(s.final == (13, -13) and s.symmetry_factor == 1.0 for s in dy.subprocesses)
    assert processes["gg_3g"].symmetry_factors.tolist() == [1 / 6]
    assert processes["gg_4g"].symmetry_factors.tolist() == [1 / 24]
    assert processes["gg_5g"].symmetry_factors.tolist() == [1 / 120]
    wbf = processes["wbf_higgs"]
    for s in wbf.subprocesses:
        assert s.final[2] == 25
        assert s.symmetry_factor == (0.5 if s.final[0] == s.final[1] else 1.0)
    assert len({(s.initial, s.final) for s in wbf.subprocesses}) == len(wbf.subprocesses)
    # Pythia's t:WW sums |V|^2 over the partners of each line: W-fusion final states of u d.
    charged = get_process("wbf_higgs", exchange="charged")
    finals = {s.final[:2] for s in charged.subprocesses if s.initial == (2, 1)}
    assert finals == {(1, 2), (1, 4), (3, 2), (3, 4), (5, 2), (5, 4)}


# ------------------------------------------------------------------ grouping is exact


@pytest.mark.parametrize(
    "name, options",
    [
        ("drell_yan", {}),
        ("wbf_higgs", {"exchange": "charged", "f_wwt": 0.7}),
        ("wbf_higgs", {"exchange": "neutral", "f_wwt": -1.3}),
        ("wbf_higgs", {"exchange": "all", "f_wwt": 2.0}),
        ("gg_3g", {}),
    ],
)
def test_grouped_matrix_element_equals_the_sum_over_subprocesses(name, options):
    """sum_k S_k L_k |M_k|^2 subprocess by subprocess (direct |M|^2 and PDF per subprocess) = the grouped sum."""
    proc = get_process(name, **options)
    _, weight, p = proc.sample(400, channel=0, seed=1)
    p = p[weight > 0][:12]
    assert p.shape[0] >= 8
    direct = (proc.parton_luminosities(p) * proc.subprocess_matrix_elements(p) * proc.symmetry_factors).sum(-1)
    torch.testing.assert_close(proc.matrix_element(p), direct, rtol=1e-11, atol=0.0)
    assert len(proc.groups) < len(proc.subprocesses) or len(proc.subprocesses) == 1


def test_wbf_matrix_element_and_score_against_amplitudes():
    """The grouped A, B, C of the process (one WBFCoefficients pass) against the per-subprocess
    amplitudes |M_SM + f M_f|^2 of wbf_me2 (a different code path), weighted with the parton
    luminosities: the matrix element at f, and the hadron-level score sum B / sum A as the central
    difference d log M / df (exact for a quadratic in f, so the step is 1)."""
    wbf = get_process("wbf_higgs", f_wwt=0.8)
    _, weight, p = wbf.sample(300, channel=0, seed=2)
    p = p[weight > 0][:12]
    lum = wbf.parton_luminosities(p) * wbf.symmetry_factors
    mu_r2 = wbf.renormalisation_scales2(p)
    scale_of = {k: g.scale for g in wbf.groups for k in g.members}

    def hadronic(f: float) -> torch.Tensor:
        total = torch.zeros(p.shape[0], dtype=p.dtype)
        for k, sub in enumerate(wbf.subprocesses):
            alpha = alpha_em_pythia(mu_r2[:, scale_of[k]])
            total += lum[:, k] * wbf_me2(p, (*sub.initial, *sub.final[:2]), f, wbf.ew, alpha_em=alpha)
        return total

    sm, up, down = hadronic(0.0), hadronic(1.0), hadronic(-1.0)
    torch.testing.assert_close(wbf.matrix_element(p), hadronic(0.8), rtol=1e-10, atol=0.0)
    torch.testing.assert_close(get_process("wbf_higgs").matrix_element(p), sm, rtol=1e-10, atol=0.0)
    abc = wbf.coefficients(p)
    assert (abc[:, 0] > 0).all() and (abc[:, 2] >= 0).all()
    score = wbf.score(p)
    torch.testing.assert_close(score, (up - down) / (2.0 * sm), rtol=1e-8, atol=1e-10 * score.abs().max().item())


def test_hadronic_interference_flips_under_the_mirror_and_sm_part_does_not():
    """(px, py, pz) -> (px, -py, pz) is improper and keeps the beams: B -> -B, A and C unchanged."""
    wbf = get_process("wbf_higgs", exchange="all")
    _, weight, p = wbf.sample(300, channel=2, seed=3)
    p = p[weight > 0][:40]
    mirrored = p * torch.tensor([1.0, 1.0, -1.0, 1.0], dtype=p.dtype)
    abc, abc_m = wbf.coefficients(p), wbf.coefficients(mirrored)
    torch.testing.assert_close(abc_m[:, 0], abc[:, 0], rtol=1e-10, atol=0)
    torch.testing.assert_close(abc_m[:, 2], abc[:, 2], rtol=1e-10, atol=0)
    torch.testing.assert_close(abc_m[:, 1], -abc[:, 1], rtol=1e-9, atol=1e-12 * abc[:, 0].abs().max().item())
    assert (abc[:, 1].abs() > 1e-6 * abc[:, 0]).any()


@pytest.mark.parametrize("name", NAMES)
def test_matrix_element_is_invariant_under_rotations_about_the_beam(name, processes):
    proc = processes[name]
    _, weight, p = proc.sample(BATCH[name] // 4, channel=0, seed=4)
    p = p[weight > 0][:20]
    angle = 0.917
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=p.dtype)
    torch.testing.assert_close(proc.matrix_element(rotate(p, rot)), proc.matrix_element(p), rtol=1e-9, atol=0)
    if not proc.hadronic:  # no beams: any rotation
        rot = random_rotation(torch.Generator().manual_seed(5))
        torch.testing.assert_close(proc.matrix_element(rotate(p, rot)), proc.matrix_element(p), rtol=1e-9, atol=0)


# ------------------------------------------------------------------ integrand, cuts, channels


@pytest.mark.parametrize("name", NAMES)
def test_weights_are_zero_outside_cuts_and_never_nan(name, processes):
    proc = processes[name]
    for c in range(proc.n_channels):
        r = uniform(BATCH[name], proc.n_random, seed=10 + c)
        # add the hypercube's faces and corners
        r[:8] = torch.tensor([0.0, 1.0]).repeat(4)[:8, None].expand(8, proc.n_random)
        r[8 : 8 + proc.n_random, :] = 0.5
        r[8 : 8 + proc.n_random].fill_diagonal_(0.0)
        weight, p = proc.integrand(r, c)
        assert weight.shape == (r.shape[0],) and p.shape == (r.shape[0], 2 + proc.n_out, 4)
        assert torch.isfinite(weight).all() and torch.isfinite(p).all()
        assert (weight >= 0).all()
        passed = proc.cuts(p)
        assert (weight[~passed] == 0).all()
        assert (weight[passed] > 0).float().mean() > 0.9
        assert 0 < passed.float().mean() < 1 or name == "drell_yan"
        # momentum conservation in the frame of the mapping
        torch.testing.assert_close(p[:, :2].sum(1), p[:, 2:].sum(1), rtol=0, atol=1e-8 * proc.sqrt_s)


@pytest.mark.parametrize("name", ["drell_yan", "wbf_higgs"])
def test_map_point_is_the_channel_mapping_split_at_the_boost(name, processes):
    """Lab momenta and weight of map_point are those of the channel's HadronicMapping; the partonic
    momenta are their centre-of-mass image; the matrix element is the same in both frames."""
    proc = processes[name]
    r = uniform(300, proc.n_random, seed=16)
    for c, channel in enumerate(proc.channels):
        point = proc.map_point(r, c)
        ref = channel.mapping.map(r)
        torch.testing.assert_close(point.momenta, ref.momenta, rtol=1e-12, atol=1e-9)
        torch.testing.assert_close(point.weight, ref.weight, rtol=1e-12, atol=0)
        torch.testing.assert_close(point.x1, ref.x1)
        torch.testing.assert_close(point.x2, ref.x2)
        zero = torch.zeros(300, 3, dtype=torch.float64)
        torch.testing.assert_close(point.partonic[:, :2].sum(1)[:, 1:], zero, rtol=0, atol=1e-9 * proc.sqrt_s)
        # The lab momenta are the partonic ones boosted along z by y = ln(x1/x2)/2 (conftest's boost).
        y = 0.5 * torch.log(point.x1 / point.x2)
        good = point.weight > 0
        boosted = boost_z(point.partonic[good], y[good][:, None])
        torch.testing.assert_close(boosted, point.momenta[good], rtol=1e-9, atol=1e-9 * proc.sqrt_s)
    ok = proc.cuts(point.momenta) & (point.weight > 0)
    lab = proc.matrix_element(point.momenta[ok])
    cm = proc.matrix_element(point.partonic[ok], point.x1[ok], point.x2[ok])
    torch.testing.assert_close(cm, lab, rtol=1e-7, atol=0)
    with pytest.raises(InputError, match="x1 and x2"):
        proc.matrix_element(point.partonic[ok], point.x1[ok])


def test_cuts_do_what_they_say():
    dy = get_process("drell_yan", zprime=False, mll_min=70.0, mll_max=110.0, lepton_pt_min=25.0, lepton_eta_max=2.4)
    _, weight, p = dy.sample(4000, channel="Z", seed=6)
    kept = p[weight > 0]
    m = torch.sqrt(msq(kept[:, 2] + kept[:, 3]))
    assert ((m > 70) & (m < 110)).all()
    assert (transverse_momentum(kept[:, 2:]) > 25).all() and (pseudorapidity(kept[:, 2:]).abs() < 2.4).all()
    wbf = get_process("wbf_higgs", m_jj_min=500.0, delta_y_min=3.0, opposite_hemispheres=True)
    _, weight, p = wbf.sample(3000, channel=0, seed=7)
    obs = WBFHiggs.jet_observables(p[weight > 0])
    assert (obs["m_jj"] > 500).all() and (obs["delta_y"] > 3).all()
    assert (obs["pt1"] > 20).all() and (obs["pt2"] > 20).all()
    gg = get_process("gg_3g", delta_r_min=1.0)
    _, weight, p = gg.sample(2000, seed=8)
    kept = p[weight > 0][:, 2:]
    eta, phi = pseudorapidity(kept), torch.atan2(kept[..., 2], kept[..., 1])
    for i, j in ((0, 1), (0, 2), (1, 2)):
        dphi = torch.remainder(phi[:, i] - phi[:, j] + math.pi, 2 * math.pi) - math.pi
        assert ((eta[:, i] - eta[:, j]) ** 2 + dphi**2 > 1.0).all()


def test_integrand_is_flux_phase_space_and_pb():
    """Partonic gg -> 3g: weight = S |M|^2 Phi_3 / (2 s) * GeV^-2->pb exactly (RAMBO weight is flat)."""
    gg = get_process("gg_3g")
    r = uniform(200, gg.n_random, seed=9)
    weight, p = gg.integrand(r)
    s = gg.sqrt_s**2
    phi3 = (2 * math.pi) ** (4 - 9) * (math.pi / 2) ** 2 * s / (2 * 1)
    expected = gg.matrix_element(p) * phi3 / (2 * s) * GEV2_TO_PB
    passed = gg.cuts(p)
    torch.testing.assert_close(weight[passed], expected[passed], rtol=1e-10, atol=0)
    torch.testing.assert_close(gg.matrix_element(p), gg.subprocess_matrix_elements(p)[:, 0] / 6, rtol=1e-12, atol=0)


def test_channel_priors_are_the_propagators():
    dy = get_process("drell_yan")
    _, weight, p = dy.sample(500, channel="Z", seed=11)
    s = msq(p[:, 2] + p[:, 3])
    alpha = dy.channel_weights(p)
    torch.testing.assert_close(alpha.sum(-1), torch.ones_like(s))
    zp = dy.zprime
    bw = lambda m, g: 1 / ((s - m * m) ** 2 + (s * g / m) ** 2)  # noqa: E731 (running width)
    expected = torch.stack([1 / s**2, bw(EW.mz, EW.gamma_z), bw(zp.mass, zp.width)], -1)
    torch.testing.assert_close(alpha, expected / expected.sum(-1, keepdim=True), rtol=1e-10, atol=0)
    # near the Z pole the Z channel dominates, near the Z' pole the Z' channel
    assert alpha[(s.sqrt() - EW.mz).abs() < 1, 1].min() > 0.9
    wbf = get_process("wbf_higgs", exchange="charged")
    _, weight, p = wbf.sample(500, channel=0, seed=12)
    t13, t24 = msq(p[:, 0] - p[:, 2]), msq(p[:, 1] - p[:, 3])
    t14, t23 = msq(p[:, 0] - p[:, 3]), msq(p[:, 1] - p[:, 2])
    mw2 = EW.mw**2
    ga, gb = 1 / ((t13 - mw2) * (t24 - mw2)) ** 2, 1 / ((t14 - mw2) * (t23 - mw2)) ** 2
    torch.testing.assert_close(wbf.channel_weights(p)[:, 0], ga / (ga + gb), rtol=1e-9, atol=1e-12)


def test_madnis_function_matches_the_integrand_and_priors():
    dy = get_process("drell_yan")
    x = uniform(300, dy.n_random, seed=13).float()
    channels = torch.arange(300) % dy.n_channels
    f, alpha = dy.madnis_function(x, channels)
    assert f.dtype == x.dtype and alpha.dtype == x.dtype and alpha.shape == (300, dy.n_channels)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(300))
    for c in range(dy.n_channels):
        w, p = dy.integrand(x[channels == c], c)
        torch.testing.assert_close(f[channels == c], w.float())
        torch.testing.assert_close(alpha[channels == c], dy.channel_weights(p).float())
    # hypercube corners and faces: finite f and alpha for every channel
    edges = torch.tensor([0.0, 1.0]).repeat(8)[:, None].expand(16, dy.n_random).float()
    for c in range(dy.n_channels):
        f_edge, alpha_edge = dy.madnis_function(edges, c)
        assert torch.isfinite(f_edge).all() and torch.isfinite(alpha_edge).all()
    import madnis.integrator as madnis
    integrand = dy.madnis_integrand()
    assert isinstance(integrand, madnis.Integrand)
    assert integrand.input_dim == dy.n_random and integrand.channel_count == dy.n_channels
    f2, y, alpha2 = integrand(x, channels)
    assert y is None
    torch.testing.assert_close(f2, f)
    torch.testing.assert_close(alpha2, alpha)


# ------------------------------------------------------------------ dtypes and devices


@pytest.mark.parametrize("name", NAMES)
def test_float32_matches_float64(name):
    p64 = get_process(name)
    p32 = get_process(name, dtype=torch.float32)
    r = uniform(BATCH[name] // 2, p64.n_random, seed=14)
    w64, m64 = p64.integrand(r, 0)
    w32, m32 = p32.integrand(r, 0)
    assert w32.dtype == torch.float32 and m32.dtype == torch.float32
    assert torch.isfinite(w32).all()
    both = (w64 > 0) & (w32 > 0)
    assert both.sum() > 0.95 * (w64 > 0).sum()  # only points at a cut's edge may flip
    rel = ((w32.double() - w64) / w64)[both].abs()
    assert rel.median() < 1e-4, rel.median()
    assert rel.quantile(0.99) < 3e-2, rel.quantile(0.99)
    total64, total32 = w64.sum().item(), w32.double().sum().item()
    assert abs(total32 / total64 - 1) < 5e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_runs_on_cuda(name):
    cpu = get_process(name)
    gpu = get_process(name, device="cuda")
    r = uniform(BATCH[name] // 2, cpu.n_random, seed=15)
    w_gpu, p_gpu = gpu.integrand(r, 0)
    assert w_gpu.device.type == "cuda" and p_gpu.device.type == "cuda"
    w_cpu, _ = cpu.integrand(r, 0)
    torch.testing.assert_close(w_gpu.cpu(), w_cpu, rtol=1e-9, atol=0)
    f, alpha = gpu.madnis_function(r.cuda().float(), torch.zeros(r.shape[0], dtype=torch.long, device="cuda"))
    assert f.device.type == "cuda" and alpha.device.type == "cuda"
