"""Bad input to ``prepare`` and bad configs: a clear error naming the culprit, and no damage to outputs.

Each ``prepare`` failure must raise :class:`InputError` naming the file, branch or sample, leave no
scratch folder or new file in the output folder, and leave earlier outputs byte-identical.
"""

from __future__ import annotations

import copy
import gzip
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml

from lhcchain.errors import InputError
from lhcchain.prepare.run import output_paths, prepare

ROOT = Path(__file__).resolve().parents[1]
CMS = "nanoAOD_2015_CMS_Open_Data_ttbar.root"
MADGRAPH = "pylhe-testfile-madgraph-2.2.1-Z-mlm.lhe.gz"
POWHEG = "pylhe-testfile-powheg-box-v2-Zj.lhe"


def load_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def prepare_cfg(levels: list[str], step_size: int = 1000, **selection) -> dict:
    cfg = load_config()["prepare"]
    cfg.update(levels=levels, step_size=step_size)
    cfg["selection"].update(selection)
    return cfg


def existing_outputs(outdir: Path) -> dict[str, bytes]:
    """Write earlier 'results' at every output path; return the folder's contents by name."""
    outdir.mkdir(parents=True)
    for key, path in output_paths(outdir).items():
        path.write_bytes(f"earlier {key} result\n".encode() + bytes(range(256)))
    return snapshot(outdir)


def snapshot(outdir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in outdir.iterdir()} if outdir.exists() else {}


def fails_cleanly(outdir: Path, sample: str, inputs: list[Path], cfg: dict, *must_name: str) -> str:
    """Run prepare expecting InputError; check the message and that ``outdir`` is as before. Returns the message."""
    before = snapshot(outdir)
    with pytest.raises(InputError) as info:
        prepare(sample, inputs, output_paths(outdir), cfg, seed=1)
    msg = str(info.value)
    for name in must_name:
        assert name in msg, f"{name!r} not named in: {msg}"
    after = snapshot(outdir)
    assert sorted(after) == sorted(before), "files appeared or vanished (partial output or .staging-* left over)"
    for name, data in before.items():
        assert after[name] == data, f"{name} was changed"
    return msg


def test_missing_input(tmp_path):
    outdir = tmp_path / "out"
    existing_outputs(outdir)
    missing = tmp_path / "no_such_file.root"
    fails_cleanly(outdir, "ghost", [missing], prepare_cfg(["reco"]), str(missing), "ghost")


@pytest.mark.parametrize("damage", ["truncated", "random_bytes", "corrupt_middle"])
def test_damaged_root_file(data_dir, tmp_path, damage):
    good = (data_dir / CMS).read_bytes()
    bad = tmp_path / f"{damage}.root"
    if damage == "truncated":
        bad.write_bytes(good[: int(0.4 * len(good))])
    elif damage == "random_bytes":
        bad.write_bytes(np.random.default_rng(1).bytes(100_000))
    else:  # header and directory intact, compressed TTree metadata overwritten
        at = int(0.4 * len(good))
        bad.write_bytes(good[:at] + np.random.default_rng(2).bytes(5000) + good[at + 5000:])
    outdir = tmp_path / "out"
    existing_outputs(outdir)
    fails_cleanly(outdir, "cms", [bad], prepare_cfg(["particle", "reco"]), str(bad))


def test_missing_branch(tmp_path):
    """A NanoAOD-like file with muons, electrons, MET and jets, but without Jet_pt."""
    path = tmp_path / "no_jet_pt.root"
    jag = lambda rows: ak.values_astype(ak.Array(rows), np.float32)  # noqa: E731
    lep = {f: jag([[30.0, 25.0], [40.0]]) for f in ("pt", "eta", "phi", "mass")}
    data = {
        "Muon": ak.zip({**lep, "pdgId": ak.Array([[13, -13], [13]])}),
        "Electron": ak.zip({**lep, "pdgId": ak.Array([[11, -11], [11]])}),
        "Jet": ak.zip({f: jag([[50.0], [60.0, 20.0]]) for f in ("eta", "phi", "mass")}),
        "MET_pt": np.array([10.0, 20.0], np.float32),
        "MET_phi": np.array([0.1, 0.2], np.float32),
    }
    with uproot.recreate(path) as f:  # NanoAOD naming: nMuon, Muon_pt, ...
        f.mktree("Events", {k: v.type.content if isinstance(v, ak.Array) else v.dtype for k, v in data.items()},
                 counter_name=lambda c: f"n{c}", field_name=lambda o, i: f"{o}_{i}")
        f["Events"].extend(data)
    keys = uproot.open(path)["Events"].keys()
    assert "Muon_pt" in keys and "Jet_eta" in keys and "Jet_pt" not in keys
    outdir = tmp_path / "out"
    existing_outputs(outdir)
    fails_cleanly(outdir, "nojets", [path], prepare_cfg(["reco"]), "'Jet_pt'", str(path))


@pytest.mark.parametrize(("source", "fresh"), [(CMS, False), (POWHEG, True)], ids=["cms_existing_outputs", "powheg_fresh_dir"])
def test_selection_keeps_nothing(data_dir, tmp_path, source, fresh):
    outdir = tmp_path / "out"
    if not fresh:
        existing_outputs(outdir)
    levels = ["parton"] if source.endswith(".lhe") else ["reco"]
    msg = fails_cleanly(outdir, "empty_sample", [data_dir / source], prepare_cfg(levels, step_size=70, lepton_pt_min=1e6),
                        "no events", "'empty_sample'")
    assert ("100 read" if fresh else "200 read") in msg
    if fresh:
        assert not any(outdir.iterdir())


@pytest.mark.filterwarnings("ignore:Parse Error:RuntimeWarning")
@pytest.mark.parametrize("damage", ["truncated_gz", "garbage_xml", "truncated_xml"])
def test_corrupt_lhe(data_dir, tmp_path, damage):
    if damage == "truncated_gz":  # ~260 events, then the gzip stream ends: two steps are read first
        bad = tmp_path / "z.lhe.gz"
        bad.write_bytes((data_dir / MADGRAPH).read_bytes()[:40_000])
        with pytest.raises(EOFError):
            gzip.decompress(bad.read_bytes())
    elif damage == "garbage_xml":
        bad = tmp_path / "garbage.lhe"
        bad.write_text('<LesHouchesEvents version="1.0">\n<init>\n 2212 2212 <<< & not xml\n<event> 1 2 </evnt>\n')
    else:  # a plain LHE file cut in the middle of an event (pylhe alone only warns and stops)
        bad = tmp_path / "cut.lhe"
        bad.write_bytes((data_dir / POWHEG).read_bytes()[:30_000])
    outdir = tmp_path / "out"
    existing_outputs(outdir)
    fails_cleanly(outdir, "lhe", [bad], prepare_cfg(["parton"], step_size=100), str(bad))


# --------------------------------------------------------------------------- config schema

BAD_CONFIGS = {
    "split_train": (("prepare", "split", "train"), -1, "train"),
    "jet_radius": (("simulate", "jets", "radius"), "wide", "radius"),
}


def bad_config(case: str) -> tuple[dict, str]:
    keys, value, named = BAD_CONFIGS[case]
    cfg = copy.deepcopy(load_config())
    node = cfg
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    return cfg, named


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_schema_rejects(case):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schema = str(ROOT / "config" / "schema.yaml")
    validate(copy.deepcopy(load_config()), schema)  # the shipped config is valid
    cfg, named = bad_config(case)
    with pytest.raises(WorkflowError) as info:
        validate(cfg, schema)
    assert named in str(info.value)


def test_snakemake_dry_run_rejects_bad_config(tmp_path):
    cfg, named = bad_config("jet_radius")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    # dry run in the project (the Snakefile reads config/ relative to it); it stops at validation
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--nolock", "--configfile", str(bad)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "radius" in out and "wide" in out, out


# --------------------------------------------------------------------------- renamed config keys

RENAMED_CASES = {  # old key -> where it used to live in the config
    "ecm": ("samples", "nominal"),
    "m_ll_min": ("processes", "drell_yan_zprime", "options"),
    "m_ll_max": ("processes", "drell_yan_zprime", "options"),
}


def with_old_key(old: str) -> dict:
    from lhcchain.config import RENAMED

    cfg = load_config()
    node = cfg
    for k in RENAMED_CASES[old]:
        node = node[k]
    node[old] = node.pop(RENAMED[old])
    return cfg


@pytest.mark.parametrize("old", list(RENAMED_CASES))
def test_renamed_key_names_the_new_one(old):
    from lhcchain.config import RENAMED, check_renamed

    assert set(RENAMED) == set(RENAMED_CASES)
    check_renamed(load_config())  # the shipped config uses the new names
    with pytest.raises(InputError) as info:
        check_renamed(with_old_key(old))
    msg = str(info.value)
    assert f"config.{'.'.join(RENAMED_CASES[old])}" in msg and repr(old) in msg and repr(RENAMED[old]) in msg


def test_snakemake_dry_run_names_a_renamed_key(tmp_path):
    bad = tmp_path / "old.yaml"
    bad.write_text(yaml.safe_dump(with_old_key("ecm")))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--nolock", "--configfile", str(bad)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "'ecm' was renamed to 'sqrt_s'" in out, out
