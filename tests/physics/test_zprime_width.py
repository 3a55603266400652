"""The Z' of ``processes.drell_yan_zprime`` is the same resonance in lhcchain and in its Pythia 8 reference.

Its width is a forced input (the config says so), not the width of its couplings (0.44 GeV at tree
level, ``test_drell_yan.test_zprime_default_couplings_and_width``; Pythia 8.317 computes 0.456 GeV):
lhcchain uses it as given, and Pythia keeps it only with ``32:doForceWidth = on``.
"""

from __future__ import annotations

import pytest

from lhcchain.config import process_spec
from lhcchain.physics.electroweak import ElectroweakParameters, weak_coupling
from lhcchain.physics.processes import build_process

from ..conftest import ROOT
from .test_config_processes import CONFIG


def pythia_settings(lines: list[str]) -> dict[str, str]:
    return {k.strip(): v.strip() for k, v in (line.split("=", 1) for line in lines)}


def test_config_says_the_zprime_width_is_forced() -> None:
    text = (ROOT / "config" / "config.yaml").read_text()
    block = text[text.index("  drell_yan_zprime:"):text.index("  gg_3g:")]
    assert "forced" in block and "doForceWidth" in block


def pythia_zprime_width(lines: list[str]) -> float:
    """The Z' width Pythia uses after initialising with ``lines``."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in [*lines, "Print:quiet = on", "PartonLevel:all = off", "HadronLevel:all = off"]:
        assert pythia.readString(line), line
    assert pythia.init()
    return pythia.particleData.mWidth(32)


def test_pythia_keeps_the_forced_width() -> None:
    """With the config's lines Pythia's Z' has lhcchain's width; without forcing it would not."""
    spec = process_spec(CONFIG, "drell_yan_zprime")
    width = build_process(spec, device="cpu").zprime.width
    assert pythia_zprime_width(spec["pythia"]) == pytest.approx(width, rel=1e-12)
    unforced = [line for line in spec["pythia"] if not line.startswith("32:doForceWidth")]
    assert pythia_zprime_width(unforced) == pytest.approx(0.456, abs=0.002)


def test_zprime_width_mass_and_couplings_match_pythia() -> None:
    """lhcchain's process built from the config and the config's Pythia lines: the same mass and
    forced width, and the same couplings in Pythia's normalisation (vertex (g/cos)/4 (v - a g5))."""
    spec = process_spec(CONFIG, "drell_yan_zprime")
    zp = build_process(spec, device="cpu").zprime
    py = pythia_settings(spec["pythia"])
    assert py["32:doForceWidth"] == "on"
    assert float(py["32:m0"]) == zp.mass == spec["options"]["zprime"]["mass"]
    assert float(py["32:mWidth"]) == zp.width == spec["options"]["zprime"]["width"]
    ew = ElectroweakParameters()
    gz = weak_coupling(ew.alpha_em, ew) / ew.cos_theta_w
    for ours, theirs in (("u", "u"), ("d", "d"), ("l", "e")):
        assert float(py[f"Zprime:v{theirs}"]) == pytest.approx(4 * getattr(zp, f"v_{ours}") / gz, abs=1e-6)
        assert float(py[f"Zprime:a{theirs}"]) == pytest.approx(4 * getattr(zp, f"a_{ours}") / gz, abs=1e-6)
