"""The repository stands alone: its data files are inside it, and nothing tracked refers outside it."""

from __future__ import annotations

import csv
import subprocess
import xml.etree.ElementTree as ET

import pytest

from lhcchain.data import package_file
from lhcchain.errors import InputError

from .conftest import ROOT

# CaloChallenge voxel counts, from the challenge's dataset descriptions (arXiv:2410.21611, Table 1).
VOXELS = {"1_photons": 368, "1_pions": 533, "2": 45 * 16 * 9, "3": 45 * 50 * 18}


@pytest.mark.parametrize("dataset", VOXELS)
def test_calochallenge_binnings_are_shipped(dataset: str) -> None:
    root = ET.parse(package_file(f"calochallenge/binning_dataset_{dataset}.xml")).getroot()
    layers = root.findall("./Bin/Layer")
    voxels = sum((len(layer.get("r_edges").split(",")) - 1) * int(layer.get("n_bin_alpha")) for layer in layers)
    assert voxels == VOXELS[dataset]


def test_published_calochallenge_table_is_shipped() -> None:
    rows = list(csv.DictReader(package_file("calochallenge/published_results.csv").open()))
    assert {r["dataset"] for r in rows} == {"ds1_photons", "ds1_pions", "ds2", "ds3"}
    geant4 = [r for r in rows if r["submission"] == "GEANT4"]
    assert len(geant4) == 4
    for r in geant4:  # GEANT4 against itself: at 0.5, except dataset 1 pions, whose two published samples differ
        expected = (0.609, 0.558) if r["dataset"] == "ds1_pions" else (0.5, 0.5)
        assert (float(r["auc_low"]), float(r["auc_high"])) == pytest.approx(expected, abs=0.003)
    calodiffusion = next(r for r in rows if r["dataset"] == "ds1_photons" and r["submission"] == "CaloDiffusion")
    assert float(calodiffusion["auc_high"]) == pytest.approx(0.536, abs=1e-3)  # the figure quoted in issue #13


def test_missing_package_file_is_named() -> None:
    with pytest.raises(InputError, match="binning_dataset_4.xml.*available: calochallenge/binning_dataset_1_photons.xml"):
        package_file("calochallenge/binning_dataset_4.xml")


def test_no_tracked_file_refers_outside_the_repository() -> None:
    git = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if git.returncode != 0:
        pytest.skip("not a git checkout")
    outside = "../" + "shared"  # split so that this file does not match itself
    offenders = []
    for name in git.stdout.split():
        path = ROOT / name
        if path.is_file() and path.suffix not in {".root", ".gz"}:
            if outside in path.read_text(errors="ignore"):
                offenders.append(name)
    assert not offenders, f"tracked files refer to {outside}: {offenders}"


def test_ci_installs_as_the_readme_says() -> None:
    """Every install step of the README's one-line test command is in .ci/run, with the same arguments."""
    readme = (ROOT / "README.md").read_text()
    test_line = next(line for line in readme.splitlines() if line.startswith("python3 -m venv") and line.endswith("pytest"))
    steps = [s.strip() for s in test_line.split("&&")]
    installs = [s.removeprefix("pip ") for s in steps if s.startswith("pip install")]
    assert installs and any("torch" in s for s in installs)
    ci = (ROOT / ".ci" / "run").read_text().replace("--quiet ", "")
    for step in installs:
        assert f"python -m pip {step}" in ci, f".ci/run does not run the README's `pip {step}`"
    assert "python3 -m venv .venv" in ci and ci.rstrip().endswith("python -m pytest")
