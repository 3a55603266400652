"""Pythia 8's cross-section of the same hard process, as an external reference for the integrals.

A process entry may list ``pythia:`` settings (``readString`` lines) that select the equivalent
Pythia process; :func:`pythia_cross_section` runs Pythia at the hard-process level only (no shower,
no hadronisation, no resonance decays), with the process's PDF file (LHAgrid1) and beam energy, and
returns ``sigmaGen`` with its error in pb.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InputError

MB_TO_PB = 1e9


def pythia_cross_section(lines: Sequence[str], sqrt_s: float, pdf_path: str | None, n_events: int,
                         seed: int) -> tuple[float, float]:
    """Pythia's ``(sigmaGen, sigmaErr)`` in pb after ``n_events`` hard-process events (module doc)."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    common = [f"Beams:eCM = {sqrt_s}", "PartonLevel:all = off", "HadronLevel:all = off",
              "ProcessLevel:resonanceDecays = off", "Print:quiet = on", "Random:setSeed = on", f"Random:seed = {seed}"]
    if pdf_path:
        common.append(f"PDF:pSet = LHAGrid1:{pdf_path}")
    for line in [*common, *lines]:
        if not pythia.readString(line):
            raise InputError(f"Pythia rejected the reference setting {line!r}")
    if not pythia.init():
        raise InputError(f"Pythia could not initialise the reference process {list(lines)}")
    for _ in range(n_events):
        pythia.next()
    info = pythia.infoPython()
    return info.sigmaGen() * MB_TO_PB, info.sigmaErr() * MB_TO_PB
