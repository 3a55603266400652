"""Tests for lhcchain.physics.pdf: LHAPDF lhagrid1 PDFs and alpha_s in torch.

Reference points: the grid files themselves (knots), PDFxTMDLib's implementation of LHAPDF's
logbicubic interpolator (values frozen below), Pythia 8's own LHAGrid1 PDF class and AlphaStrong,
sum rules and the exact two-loop running of alpha_s. Sets are the ones Pythia ships.
"""

from __future__ import annotations

import functools
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lhcchain.errors import InputError
from lhcchain.physics.pdf import PARTONS, AlphaS, GridPDF, load_pdf, pythia_pdfdata_dir

pythia8mc = pytest.importorskip("pythia8mc")

NNPDF31 = "NNPDF31_lo_as_0118"  # two Q subgrids (b threshold at 4.92 GeV), 11 partons, no .info
NNPDF23 = "NNPDF23_lo_as_0130_qed"  # one Q subgrid, 14 flavours (top and photon too)


@pytest.fixture(scope="module")
def pdf31() -> GridPDF:
    return load_pdf(NNPDF31)


@pytest.fixture(scope="module")
def pdf23() -> GridPDF:
    return load_pdf(NNPDF23)


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-12, atol: float = 0.0) -> None:
    """Same shape and dtype, values within ``atol + rtol * |expected|`` (numpy's check: torch.testing
    costs seconds to import)."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_allclose(actual.cpu().numpy(), expected.cpu().numpy(), rtol=rtol, atol=atol)


@functools.cache
def _dat(name: str) -> Path:
    """Pythia's shipped member file of set ``name`` (looked up once, before any test moves PYTHIA8DATA)."""
    return pythia_pdfdata_dir() / f"{name}_0000.dat"


def _raw_subgrids(path: Path) -> list[tuple[np.ndarray, np.ndarray, list[int], np.ndarray]]:
    """Minimal independent reader: (x knots, Q knots, flavours, values[ix, iq, flavour]) per subgrid."""
    blocks = [b.strip().splitlines() for b in path.read_text().split("\n---")[1:] if b.strip()]
    grids = []
    for lines in blocks:
        x, q = np.array(lines[0].split(), float), np.array(lines[1].split(), float)
        flavours = [int(f) for f in lines[2].split()]
        values = np.array(" ".join(lines[3:]).split(), float).reshape(x.size, q.size, len(flavours))
        grids.append((x, q, flavours, values))
    return grids


def _pythia_pdf(path: Path):
    pythia = pythia8mc.Pythia("", False)
    pythia.readString(f"PDF:pSet = LHAGrid1:{path}")
    return pythia, pythia.getPDFPtr(2212)


def _make_set(folder: Path, name: str, info: str | None = None, source: str = NNPDF31) -> Path:
    """An LHAPDF set folder ``folder/name`` holding a copy of a Pythia member file (and .info)."""
    set_dir = folder / name
    set_dir.mkdir(parents=True)
    shutil.copy(_dat(source), set_dir / f"{name}_0000.dat")
    if info is not None:
        (set_dir / f"{name}.info").write_text(info)
    return set_dir


# ------------------------------------------------------------------------------------------
# Locating and loading


def test_pythia_pdfdata_dir_holds_the_shipped_sets() -> None:
    folder = pythia_pdfdata_dir()
    assert folder.parts[-3:] == ("share", "Pythia8", "pdfdata")
    assert (folder / f"{NNPDF31}_0000.dat").is_file()


def test_load_by_name_file_and_folder_agree(pdf31: GridPDF, tmp_path: Path) -> None:
    x, q2 = torch.tensor([1e-4, 0.1, 0.6]), torch.tensor([10.0, 1e3, 1e6])
    expected = pdf31.xfxQ2_all(x, q2)
    by_file = load_pdf(_dat(NNPDF31))
    info = "AlphaS_MZ: 0.118\nAlphaS_OrderQCD: 0\nMCharm: 1.51\nMBottom: 4.92\nMZ: 91.1876\n"
    by_folder = load_pdf(_make_set(tmp_path, "MySet", info))
    for pdf in (by_file, by_folder):
        _assert_close(pdf.xfxQ2_all(x, q2), expected, rtol=0, atol=0)
    assert pdf31.path == _dat(NNPDF31) and pdf31.info_path is None
    assert by_folder.name == "MySet" and by_folder.info_path == tmp_path / "MySet" / "MySet.info"
    assert by_folder.metadata["MCharm"] == 1.51  # from the .info, not the LHAPDF default


def test_search_honours_pythia8data_and_lhapdf_data_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _make_set(tmp_path / "lhapdf", "InPath")
    (tmp_path / "xmldoc").mkdir()
    (tmp_path / "pdfdata").mkdir()
    shutil.copy(_dat(NNPDF31), tmp_path / "pdfdata" / "Private_as_0120_lo_0000.dat")
    monkeypatch.setenv("PYTHIA8DATA", str(tmp_path / "xmldoc"))
    assert pythia_pdfdata_dir() == tmp_path / "pdfdata"
    assert load_pdf("Private_as_0120_lo").metadata["AlphaS_MZ"] == pytest.approx(0.120)

    monkeypatch.setenv("LHAPDF_DATA_PATH", str(tmp_path / "lhapdf"))
    assert load_pdf("InPath").path == tmp_path / "lhapdf" / "InPath" / "InPath_0000.dat"

    monkeypatch.setenv("PYTHIA8DATA", str(tmp_path / "nowhere" / "xmldoc"))
    with pytest.raises(InputError, match="PYTHIA8DATA"):
        pythia_pdfdata_dir()


# ------------------------------------------------------------------------------------------
# Interpolation


def test_reproduces_every_grid_knot(pdf31: GridPDF) -> None:
    """At each (x, Q) knot the file value comes back; on the shared boundary Q the upper subgrid wins."""
    grids = _raw_subgrids(pdf31.path)
    assert len(grids) == 2 and pdf31.q_edges == (grids[1][1][0],)
    for i, (x, q, flavours, values) in enumerate(grids):
        q_rows = q if i == len(grids) - 1 else q[:-1]
        xx, qq = np.meshgrid(x, q_rows, indexing="ij")
        got = pdf31.xfxQ2_all(torch.tensor(xx), torch.tensor(qq * qq)).numpy()
        want = values[:, :q_rows.size, [flavours.index(f) for f in PARTONS]]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_extra_flavours_at_knots(pdf23: GridPDF) -> None:
    ((x, q, flavours, values),) = _raw_subgrids(pdf23.path)
    assert set(pdf23.flavours) == set(flavours) == {*PARTONS, 6, -6, 22}
    xx, qq = np.meshgrid(x[::7], q[::5], indexing="ij")
    for pid in (22, 6, -6, 21):
        got = pdf23.xfxQ2(pid, torch.tensor(xx), torch.tensor(qq * qq)).numpy()
        np.testing.assert_allclose(got, values[::7, ::5, flavours.index(pid)], rtol=1e-12, atol=1e-15)


# x, Q (GeV), then x f for g, u, dbar, c, b: PDFxTMDLib 2.0.1 (CLHAPDFBicubicInterpolator, an
# independent C++ implementation of LHAPDF's logbicubic scheme) on NNPDF31_lo_as_0118 member 0. The
# points cover the first and last Q interval of both subgrids, where the scheme uses one-sided
# differences, and both x ends.
_LHAPDF_REFERENCE = [
    (3e-09, 1.7, (124.98131534770657, 84.85173719952216, -77.97462755937956, 0.14281021503597308, -6.261592753713368e-09)),
    (2e-06, 4.6, (76.19647881808316, 5.126032387256697, -1.0058573226412038, 0.8488541878607805, -4.6804943047427475e-09)),
    (0.0001, 5.2, (33.35486625845807, 1.3487264255451765, 1.1757865889388621, 0.49169599717786583, 0.03027277236000549)),
    (0.003, 20.0, (16.124209872176372, 0.9729343703959404, 0.8613636511314746, 0.3893672016761937, 0.22557479423393867)),
    (0.07, 100.0, (1.3922756101188738, 0.5774864222082504, 0.2088738455945315, 0.05119248450840519, 0.028199234642802138)),
    (0.25, 2.5, (0.3816112672186153, 0.5721446187698874, 0.042309000439013554, 0.028044547614771827, 1.1120418720180359e-10)),
    (0.6, 90000.0, (0.0003598419383711955, 0.017757290973799286, 0.001164309498371188, 0.001389614486925659, 4.589183972975216e-06)),
    (0.97, 400.0, (1.0112983709242805e-07, 5.4229045136359574e-05, 4.5485191993345675e-06, 4.177570522658649e-07, 5.340582094389072e-10)),
]


def test_matches_lhapdf_logbicubic_reference_values(pdf31: GridPDF) -> None:
    x = torch.tensor([p[0] for p in _LHAPDF_REFERENCE], dtype=torch.float64)
    q = torch.tensor([p[1] for p in _LHAPDF_REFERENCE], dtype=torch.float64)
    want = torch.tensor([p[2] for p in _LHAPDF_REFERENCE], dtype=torch.float64)
    got = torch.stack([pdf31.xfxQ(pid, x, q) for pid in (21, 2, -1, 4, 5)], dim=-1)
    _assert_close(got, want, rtol=1e-11, atol=1e-20)


@pytest.mark.parametrize("name", [NNPDF31, NNPDF23])
def test_agrees_with_pythia_lhagrid1(name: str) -> None:
    """Pythia's LHAGrid1 interpolates the same knots with 4-point Lagrange polynomials in (ln x, ln Q)
    rather than LHAPDF's Hermite scheme; measured on these sets (x in [1e-6, 0.8]): median relative
    difference 1e-5 to 3e-5 for g, u, d, ubar, dbar in the bulk, 99% of points below 1.3e-3, and at
    most 3.7e-3 of the point's largest parton away from the first and last Q interval of each subgrid.
    In those edge intervals LHAPDF's one-sided Q derivative differs more where PDFs evolve fast (up to
    7.5% of the gluon at Q < 1.2 GeV, x ~ 1e-4 for NNPDF2.3 LO). Pythia returns (c + cbar)/2 and
    (b + bbar)/2 for c and b, and clips xf() at 0, so its raw values xfRaw() are compared."""
    pdf = load_pdf(name)
    _keep_alive, pythia_pdf = _pythia_pdf(pdf.path)
    rng = np.random.default_rng(7)
    n = 1500
    x = np.exp(rng.uniform(math.log(1e-6), math.log(0.8), n))
    q = np.exp(rng.uniform(math.log(pdf.q_min), math.log(pdf.q_max), n))
    ours = pdf.xfxQ2_all(torch.tensor(x), torch.tensor(q * q)).numpy()
    theirs = np.empty_like(ours)
    for i in range(n):
        pythia_pdf.xf(21, x[i], q[i] ** 2)  # updates all flavours
        theirs[i] = [pythia_pdf.xfRaw(pid) for pid in PARTONS]
    for quark, antiquark in ((PARTONS.index(4), PARTONS.index(-4)), (PARTONS.index(5), PARTONS.index(-5))):
        ours[:, quark] = ours[:, antiquark] = 0.5 * (ours[:, quark] + ours[:, antiquark])

    largest = np.abs(theirs).max(axis=1)
    diff = np.abs(ours - theirs).max(axis=1) / largest
    edge = np.zeros(n, dtype=bool)  # in the first or last Q interval of a subgrid
    for _, knots, _, _ in _raw_subgrids(pdf.path):
        edge |= ((q >= knots[0]) & (q < knots[1])) | ((q > knots[-2]) & (q <= knots[-1]))
    assert diff[~edge].max() < 5e-3
    assert diff[edge].max() < 0.1

    main = [PARTONS.index(pid) for pid in (21, 2, 1, -2, -1)]
    bulk = (x > 1e-5) & (x < 0.5) & (q > 2 * pdf.q_min) & (q < pdf.q_max / 2)
    rel = np.abs(ours - theirs)[bulk][:, main] / np.abs(theirs)[bulk][:, main]
    assert np.median(rel) < 1e-4
    assert np.quantile(rel, 0.99) < 3e-3


def test_no_interpolation_across_subgrid_boundary(tmp_path: Path) -> None:
    """Doubling the upper subgrid's values doubles every result above the b threshold and changes
    nothing below it (the interpolation is linear in the grid values)."""
    source = _dat(NNPDF31)
    text = source.read_text()
    head, lower, upper, tail = text.split("\n---\n")
    lines = upper.splitlines()
    doubled = [" ".join(repr(2 * float(v)) for v in line.split()) for line in lines[3:]]
    (tmp_path / "Doubled_0000.dat").write_text("\n---\n".join([head, lower, "\n".join(lines[:3] + doubled), tail]))
    original, modified = load_pdf(source), load_pdf(tmp_path / "Doubled_0000.dat")

    x = torch.logspace(-8, -0.05, 40, dtype=torch.float64)
    edge = original.q_edges[0]
    for q, factor in ((1.7, 1.0), (edge * (1 - 1e-6), 1.0), (edge, 2.0), (edge * (1 + 1e-6), 2.0), (300.0, 2.0)):
        _assert_close(modified.xfxQ2_all(x, q * q), factor * original.xfxQ2_all(x, q * q),
                                   rtol=1e-13, atol=1e-30)


def test_short_subgrid_falls_back_to_bilinear(tmp_path: Path) -> None:
    """A subgrid with 3 Q knots is interpolated linearly in (ln x, ln Q2), a longer one cubically;
    flavour id 0 in a file is the gluon."""
    x = np.array([1e-3, 1e-2, 0.1, 0.5, 1.0])
    subgrids = [np.array([1.0, 2.0, 3.0]), np.array([3.0, 5.0, 10.0, 20.0, 50.0])]

    def gluon(xv: np.ndarray, qv: np.ndarray) -> np.ndarray:
        return np.log(xv) ** 2 * (1 + np.log(qv * qv))

    blocks = []
    for q in subgrids:
        rows = [f"{float(gluon(xi, qi))!r} 1.0" for xi in x for qi in q]
        blocks.append("\n".join([" ".join(map(str, x.tolist())), " ".join(map(str, q.tolist())), "0 2", *rows]))
    path = tmp_path / "Toy_0000.dat"
    path.write_text("PdfType: central\nFormat: lhagrid1\n---\n" + "\n---\n".join(blocks) + "\n---\n")
    pdf = load_pdf(path)
    assert pdf.flavours == (21, 2) and pdf.q_edges == (3.0,)

    x_mid, q_mid = math.sqrt(1e-3 * 1e-2), math.sqrt(1.0 * 2.0)  # halfway in ln x and in ln Q2
    bilinear = np.mean([gluon(xi, qi) for xi in (1e-3, 1e-2) for qi in (1.0, 2.0)])
    assert pdf.xfxQ(0, x_mid, q_mid).item() == pytest.approx(bilinear, rel=1e-13)
    assert pdf.xfxQ(21, x_mid, q_mid).item() == pytest.approx(bilinear, rel=1e-13)
    bilinear_long = np.mean([gluon(xi, qi) for xi in (1e-3, 1e-2) for qi in (5.0, 10.0)])
    assert abs(pdf.xfxQ(21, x_mid, math.sqrt(50.0)).item() / bilinear_long - 1) > 1e-2  # cubic in ln x there
    assert pdf.xfxQ(2, x_mid, q_mid).item() == pytest.approx(1.0, rel=1e-14)


def test_extrapolation_freezes_at_the_grid_edges(pdf31: GridPDF) -> None:
    xs = torch.tensor([1e-12, pdf31.x_min, 0.3, 0.3, 0.3, 0.3, 1.5, 1e-12], dtype=torch.float64)
    qs = torch.tensor([30.0, 30.0, 0.5, pdf31.q_min, 1e6, pdf31.q_max, 30.0, 1e6], dtype=torch.float64)
    got = pdf31.xfxQ2_all(xs, qs * qs)
    _assert_close(got[0], got[1], rtol=0, atol=0)  # x < XMin -> XMin
    _assert_close(got[2], got[3], rtol=0, atol=0)  # Q < QMin -> QMin
    _assert_close(got[4], got[5], rtol=0, atol=0)  # Q > QMax -> QMax
    _assert_close(got[6], pdf31.xfxQ2_all(torch.tensor(1.0, dtype=torch.float64), 900.0), rtol=0)
    _assert_close(got[6], torch.zeros(11, dtype=torch.float64), rtol=0, atol=1e-12)  # x = 1: zero
    _assert_close(got[7], pdf31.xfxQ2_all(pdf31.x_min, pdf31.q_max ** 2), rtol=1e-14)  # corner


def test_force_positive_clips_like_lhapdf() -> None:
    raw, clipped = load_pdf(NNPDF31), load_pdf(NNPDF31, metadata={"ForcePositive": 1})
    x = torch.logspace(-9, -0.01, 200, dtype=torch.float64)
    values = raw.xfxQ2_all(x, 4.0)
    assert (values < 0).any()  # NNPDF3.1 LO has negative sea quarks at low Q
    _assert_close(clipped.xfxQ2_all(x, 4.0), values.clamp(min=0), rtol=0)


# ------------------------------------------------------------------------------------------
# Sum rules


@pytest.mark.parametrize("q", [3.0, 100.0])
@pytest.mark.parametrize("name", [NNPDF31, NNPDF23])
def test_momentum_and_valence_sum_rules(name: str, q: float) -> None:
    pdf = load_pdf(name)
    log_x = torch.linspace(math.log(pdf.x_min), 0.0, 2001, dtype=torch.float64)
    weights = torch.ones_like(log_x)  # Simpson in ln x: int f dx = int (x f) d ln x
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    weights *= (log_x[1] - log_x[0]) / 3
    x = log_x.exp()
    xf = pdf.xfxQ2_all(x, q * q)
    others = sum(pdf.xfxQ2(pid, x, q * q) for pid in pdf.flavours if pid not in PARTONS)  # top, photon
    momentum = float((weights * x * (xf.sum(dim=-1) + others)).sum())
    number = dict(zip(PARTONS, (weights[:, None] * xf).sum(dim=0).tolist()))
    assert momentum == pytest.approx(1.0, abs=1e-2)
    assert number[2] - number[-2] == pytest.approx(2.0, abs=0.03)
    assert number[1] - number[-1] == pytest.approx(1.0, abs=0.03)
    assert number[3] - number[-3] == pytest.approx(0.0, abs=0.01)


# ------------------------------------------------------------------------------------------
# alpha_s


def test_alpha_s_of_a_bare_file_follows_its_name_and_matches_pythia(pdf31: GridPDF) -> None:
    """No .info beside Pythia's file: AlphaS_MZ = 0.118 and LO come from the name, the b mass from
    the subgrid boundary. LO running is exact one-loop, as Pythia's AlphaStrong at first order."""
    meta = pdf31.metadata
    assert (meta["AlphaS_MZ"], meta["AlphaS_OrderQCD"], meta["MBottom"]) == (0.118, 0, 4.92)
    assert pdf31.alphasQ(meta["MZ"]).item() == pytest.approx(0.118, abs=1e-14)

    q = torch.logspace(math.log10(1.7), 5, 300, dtype=torch.float64)
    alpha = pdf31.alphasQ(q)
    assert bool((alpha[1:] < alpha[:-1]).all())

    pythia_mz = 91.188  # Pythia's AlphaStrong uses this MZ
    pdf = load_pdf(NNPDF31, metadata={"MZ": pythia_mz})
    strong = pythia8mc.AlphaStrong()
    strong.setThresholds(meta["MCharm"], meta["MBottom"], meta["MTop"])
    strong.init(0.118, 1, 5)
    ours = pdf.alphasQ(q).numpy()
    theirs = np.array([strong.alphaS(v * v) for v in q.tolist()])
    np.testing.assert_allclose(ours, theirs, rtol=1e-7)


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_alpha_s_running_is_anchored_and_decreasing(order: int) -> None:
    alpha_s = AlphaS.from_running(0.118, order, masses=(0.005, 0.002, 0.1, 1.51, 4.92, 172.5), q_range=(1.0, 1e4))
    assert alpha_s.alphasQ(91.1876).item() == pytest.approx(0.118, abs=1e-14)
    q = torch.logspace(0, 4, 400, dtype=torch.float64)
    alpha = alpha_s.alphasQ(q)
    assert bool((alpha[1:] < alpha[:-1]).all())
    below, above = alpha_s.alphasQ(torch.tensor([4.92 * (1 - 1e-12), 4.92], dtype=torch.float64)).tolist()
    a = above / math.pi  # MSbar decoupling at mu = m_b: alpha_4 = alpha_5 (1 + 11/72 a^2 + c3 a^3)
    c3 = 564731 / 124416 - 82043 / 27648 * 1.2020569031595942 - 2633 / 31104 * 4
    shift = (11 / 72 * a * a if order >= 2 else 0.0) + (c3 * a ** 3 if order >= 3 else 0.0)
    assert below / above == pytest.approx(1 + shift, abs=1e-9)


def test_alpha_s_two_loop_running_is_exact() -> None:
    """Between m_b and m_t the two-loop equation has the implicit solution
    ln(Q^2/MZ^2) = G(a(Q)) - G(a(MZ)), G(a) = 1/(b0 a) + b1/b0^2 ln(a / (b0 + b1 a))."""
    alpha_s = AlphaS.from_running(0.118, 1)
    b0, b1 = (33 - 10) / (12 * math.pi), (153 - 95) / (24 * math.pi ** 2)

    def g(a: float) -> float:
        return 1 / (b0 * a) + b1 / b0 ** 2 * math.log(a / (b0 + b1 * a))

    for q in (5.5, 12.3, 45.0, 91.1876, 150.0):
        a = alpha_s.alphasQ(q).item()
        assert g(a) - g(0.118) == pytest.approx(math.log(q * q / 91.1876 ** 2), abs=1e-7)


def test_alpha_s_table_interpolation_like_lhapdf_ipol(tmp_path: Path) -> None:
    """A set with AlphaS_Qs/AlphaS_Vals: knots exact, cubic in ln Q2 in between, split at the
    repeated threshold knot, power law below the table and frozen above it."""

    def one_loop(q: float, nf: int, q_ref: float, a_ref: float) -> float:
        return 1 / (1 / a_ref + (33 - 2 * nf) / (12 * math.pi) * math.log(q * q / q_ref ** 2))

    a_b = one_loop(4.92, 5, 91.1876, 0.118)
    q4 = list(np.geomspace(1.65, 4.92, 12))
    q5 = list(np.geomspace(4.92, 91.1876, 15)) + list(np.geomspace(91.1876, 1e5, 20))[1:]
    qs = q4 + q5
    vals = [one_loop(q, 4, 4.92, a_b) for q in q4] + [one_loop(q, 5, 91.1876, 0.118) for q in q5]
    info = (f"AlphaS_MZ: 0.118\nAlphaS_Type: ipol\nAlphaS_Qs: [{', '.join(repr(float(q)) for q in qs)}]\n"
            f"AlphaS_Vals: [{', '.join(repr(float(a)) for a in vals)}]\n")
    pdf = load_pdf(_make_set(tmp_path, "WithTable", info))

    knots = pdf.alphasQ(torch.tensor(qs[:11] + qs[12:], dtype=torch.float64))
    _assert_close(knots, torch.tensor(vals[:11] + vals[12:], dtype=torch.float64), rtol=1e-14, atol=0)
    assert pdf.alphasQ(91.1876).item() == pytest.approx(0.118, abs=1e-15)
    between = [2.0, 3.3, 4.9, 5.0, 20.0, 500.0, 3e4]
    want = [one_loop(q, 4 if q < 4.92 else 5, *((4.92, a_b) if q < 4.92 else (91.1876, 0.118))) for q in between]
    np.testing.assert_allclose(pdf.alphasQ(torch.tensor(between, dtype=torch.float64)).numpy(), want, rtol=2e-4)

    power = math.log(vals[1] / vals[0]) / math.log(qs[1] ** 2 / qs[0] ** 2)
    assert pdf.alphasQ(1.0).item() == pytest.approx(vals[0] * (1 / qs[0] ** 2) ** power, rel=1e-12)
    assert pdf.alphasQ(1e6).item() == pytest.approx(vals[-1], rel=1e-15)


def test_alpha_s_needs_information(tmp_path: Path) -> None:
    shutil.copy(_dat(NNPDF31), tmp_path / "Anonymous_0000.dat")
    pdf = load_pdf(tmp_path / "Anonymous_0000.dat")
    with pytest.raises(InputError, match="Anonymous_0000.dat.*AlphaS_MZ"):
        pdf.alphasQ2(100.0)
    named = load_pdf(tmp_path / "Anonymous_0000.dat", metadata={"AlphaS_MZ": 0.118, "AlphaS_OrderQCD": 0})
    assert named.alphasQ(91.1876).item() == pytest.approx(0.118, abs=1e-14)
    with pytest.raises(InputError, match="equal length"):
        AlphaS([1.0, 2.0, 3.0], [0.3, 0.2])


# ------------------------------------------------------------------------------------------
# Batching, dtypes, devices


def test_shapes_flavour_axis_and_per_point_ids(pdf31: GridPDF) -> None:
    x = torch.logspace(-6, -0.2, 60, dtype=torch.float64).reshape(3, 4, 5)
    q2 = torch.tensor(250.0, dtype=torch.float64)
    every = pdf31.xfxQ2_all(x, q2)
    assert every.shape == (3, 4, 5, 11)
    for column, pid in enumerate(PARTONS):
        single = pdf31.xfxQ2(pid, x, q2)
        assert single.shape == (3, 4, 5)
        _assert_close(every[..., column], single, rtol=0, atol=0)
    _assert_close(pdf31.xfxQ2(0, x, q2), pdf31.xfxQ2(21, x, q2), rtol=0, atol=0)
    _assert_close(pdf31.xfxQ(2, x, q2.sqrt()), pdf31.xfxQ2(2, x, q2), rtol=1e-13)
    assert not pdf31.xfxQ2(22, x, q2).any() and not pdf31.xfxQ2(6, x, q2).any()  # not in this set

    ids = torch.tensor([-5, -1, 0, 21, 2, 5, 22, 6, 99, -30])
    xs = torch.logspace(-5, -0.5, ids.numel(), dtype=torch.float64)
    per_point = pdf31.xfxQ2(ids, xs, q2)
    one_by_one = torch.stack([pdf31.xfxQ2(int(p), x_, q2) for p, x_ in zip(ids, xs)])
    _assert_close(per_point, one_by_one, rtol=0, atol=0)

    python_numbers = pdf31.xfxQ2(2, 0.01, 100.0)
    assert python_numbers.dtype == torch.float64 and python_numbers.shape == ()
    assert pdf31.xfxQ2_all(torch.empty(0), torch.empty(0)).shape == (0, 11)


def test_float32_agrees_with_float64(pdf31: GridPDF) -> None:
    rng = np.random.default_rng(3)
    x32 = torch.tensor(np.exp(rng.uniform(math.log(1e-8), math.log(0.9), 2000)), dtype=torch.float32)
    q2_32 = torch.tensor(np.exp(rng.uniform(math.log(2.8), math.log(1e9), 2000)), dtype=torch.float32)
    single = pdf31.xfxQ2_all(x32, q2_32)
    double = pdf31.xfxQ2_all(x32.double(), q2_32.double())  # the same (float32-representable) points
    assert single.dtype == torch.float32
    largest = double.abs().amax(dim=-1, keepdim=True)
    sizeable = double.abs() > 1e-2 * largest
    rel = ((single.double() - double).abs() / double.abs())[sizeable]
    assert rel.max() < 1e-5
    q = torch.logspace(0.3, 4, 50)
    _assert_close(pdf31.alphasQ(q), pdf31.alphasQ(q.double()).float(), rtol=1e-6, atol=0)
    assert pdf31.alphasQ(q).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda(pdf31: GridPDF) -> None:
    x = torch.logspace(-7, -0.1, 500, dtype=torch.float64)
    q2 = torch.logspace(1, 8, 500, dtype=torch.float64)
    for dtype in (torch.float64, torch.float32):
        gpu = pdf31.xfxQ2_all(x.to("cuda", dtype), q2.to("cuda", dtype))
        assert gpu.device.type == "cuda" and gpu.dtype == dtype
        _assert_close(gpu.cpu(), pdf31.xfxQ2_all(x.to(dtype), q2.to(dtype)), rtol=1e-5, atol=1e-6)
        assert pdf31.alphasQ2(q2.to("cuda", dtype)).device.type == "cuda"
    ids = torch.tensor([21, 2, -1] * 10, device="cuda")
    assert pdf31.xfxQ2(ids, x[:30].cuda(), q2[:30].cuda()).device.type == "cuda"


# ------------------------------------------------------------------------------------------
# Errors


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Nope_0000.dat"):
        load_pdf(tmp_path / "Nope_0000.dat")
    with pytest.raises(InputError, match="NoSuchSet_xyz"):
        load_pdf("NoSuchSet_xyz")
    empty = tmp_path / "EmptySet"
    empty.mkdir()
    with pytest.raises(InputError, match="EmptySet_0003.dat"):
        load_pdf(empty, member=3)
    with pytest.raises(InputError, match="member"):
        load_pdf(_dat(NNPDF31), member=1)


def _corrupt(text: str, how: str) -> str:
    head, first, *rest = text.split("\n---\n")
    lines = first.splitlines()
    if how == "truncated":
        lines = lines[:-1]
    elif how == "not a number":
        lines[10] = lines[10].replace("E", "Z", 1)
    elif how == "unsorted knots":
        knots = lines[0].split()
        knots[3], knots[4] = knots[4], knots[3]
        lines[0] = " ".join(knots)
    elif how == "no separator":
        return text.replace("---", "===")
    elif how == "bad header":
        head = "PdfType: [central"
    elif how == "gap between subgrids":
        rest[0] = rest[0].replace("4.9200000e+00", "5.0000000e+00", 1)
    return "\n---\n".join([head, "\n".join(lines), *rest])


@pytest.mark.parametrize("how", ["truncated", "not a number", "unsorted knots", "no separator", "bad header",
                                 "gap between subgrids"])
def test_malformed_files_are_named(tmp_path: Path, how: str) -> None:
    path = tmp_path / "Broken_0000.dat"
    path.write_text(_corrupt(_dat(NNPDF31).read_text(), how))
    with pytest.raises(InputError, match="Broken_0000.dat"):
        load_pdf(path)


def test_malformed_info_is_named(tmp_path: Path) -> None:
    set_dir = _make_set(tmp_path, "BadInfo", "AlphaS_MZ: [0.118\n")
    with pytest.raises(InputError, match="BadInfo.info"):
        load_pdf(set_dir)
