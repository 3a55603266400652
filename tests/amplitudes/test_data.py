"""Datasets: writer/reader round trip, invariants, split fractions, import of external arrays."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from lhcchain.amplitudes.data import import_dataset, make_dataset, read_dataset, split_labels
from lhcchain.amplitudes.features import FeatureMap, identical_legs, invariant_pairs
from lhcchain.errors import InputError
from lhcchain.physics import get_process

from .conftest import SPLIT


def _direct_invariants(p: np.ndarray) -> np.ndarray:
    """2 k_i.k_j with k = -p for the two incoming legs, written out with explicit loops."""
    n = p.shape[1]
    out = []
    for i in range(n):
        for j in range(i + 1, n):
            si = -1.0 if i < 2 else 1.0
            sj = -1.0 if j < 2 else 1.0
            dot = p[:, i, 0] * p[:, j, 0] - p[:, i, 1] * p[:, j, 1] - p[:, i, 2] * p[:, j, 2] - p[:, i, 3] * p[:, j, 3]
            out.append(2.0 * si * sj * dot)
    return np.stack(out, -1)


def test_round_trip_and_contents(small_dataset, gg3g):
    path, metrics = small_dataset
    data = read_dataset(path)
    p, inv, amp, split = data["momenta"], data["invariants"], data["amplitudes"], data["split"]
    assert p.shape == (3000, 5, 4) and inv.shape == (3000, 10) and amp.shape == (3000,) and split.dtype == np.int8
    assert metrics["n_points"] == 3000 and metrics["exact_evals_per_s"] > 0
    attrs = data["attrs"]
    assert attrs["process"] == "gg_3g" and attrs["sampling"] == "flat" and attrs["seed"] == 11
    assert attrs["amplitude_kind"] == "bare" and list(attrs["identical_legs"]) == [2, 3, 4]
    assert list(attrs["invariant_names"])[:3] == ["s_12", "s_13", "s_14"] and "crossed" in attrs["invariant_definition"]
    # momentum conservation, cuts, the physics core's |M|^2 at the stored points, positivity
    pt = torch.from_numpy(p)
    assert torch.allclose(pt[:, :2].sum(1), pt[:, 2:].sum(1), atol=1e-8)
    assert bool(gg3g.cuts(pt).all())
    assert np.allclose(gg3g.subprocess_matrix_element(pt[:50], 0).numpy(), amp[:50], rtol=1e-12)
    assert (amp > 0).all() and np.isfinite(amp).all()
    # invariants against a direct computation, and s_12 = s_hat, s_ij > 0 between final gluons, s_1j < 0
    assert np.allclose(inv, _direct_invariants(p), rtol=1e-12, atol=1e-6)
    assert np.allclose(inv[:, 0], 1000.0**2, rtol=1e-10)
    pairs = invariant_pairs(5)
    for c, (i, j) in enumerate(pairs):
        assert ((inv[:, c] > 0) == (i >= 2 or j == 1)).all()
    # parts
    test = read_dataset(path, parts=[2])
    assert len(test["amplitudes"]) == int((split == 2).sum())


def test_split_fractions():
    labels = split_labels(1000, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    assert np.bincount(labels, minlength=3).tolist() == [800, 100, 100]
    labels = split_labels(999, {"train": 2, "val": 1, "test": 0}, seed=3)
    assert np.bincount(labels, minlength=3).tolist() == [666, 333, 0]
    assert not np.array_equal(split_labels(100, SPLIT, 1), split_labels(100, SPLIT, 2))
    with pytest.raises(InputError, match="train"):
        split_labels(10, {"train": 0.0, "val": 1.0}, seed=1)
    with pytest.raises(InputError, match="unknown"):
        split_labels(10, {"training": 1.0}, seed=1)


def test_importance_sampling_multichannel(tmp_path):
    proc = get_process("drell_yan")
    path = tmp_path / "dy.h5"
    m = make_dataset(proc, 400, path, sampling="importance", split=SPLIT, seed=5, batch_size=4000)
    data = read_dataset(path)
    assert data["attrs"]["sampling"] == "importance" and data["attrs"]["w_max"] > 0
    assert data["attrs"]["amplitude_kind"] == "weighted" and data["attrs"]["sqrt_s"] > 0
    assert m["n_points"] == 400 and data["momenta"].shape == (400, 4, 4)
    amp = proc.matrix_element(torch.from_numpy(data["momenta"][:20]))
    assert np.allclose(amp.numpy(), data["amplitudes"][:20], rtol=1e-10)
    assert identical_legs(proc) == []
    with pytest.raises(InputError, match="sampling"):
        make_dataset(proc, 10, tmp_path / "x.h5", sampling="vegas", split=SPLIT, seed=1)


def test_deepsets_standardisation_is_symmetric(small_dataset):
    data = read_dataset(small_dataset[0])
    fmap = FeatureMap("invariants", 5, None).fit(torch.from_numpy(data["momenta"]), [2, 3, 4])
    # s_13, s_14, s_15 share constants; so do s_34, s_35, s_45
    assert torch.allclose(fmap.mean[[1, 2, 3]], fmap.mean[1].expand(3))
    assert torch.allclose(fmap.std[[7, 8, 9]], fmap.std[7].expand(3))


def _external(tmp_path, suffix, momenta, amplitudes, mkey="momenta", akey="amplitudes"):
    path = tmp_path / f"ext{suffix}"
    if suffix == ".npz":
        np.savez(path, **{mkey: momenta, akey: amplitudes})
    else:
        with h5py.File(path, "w") as f:
            f[mkey] = momenta
            f[akey] = amplitudes
    return path


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_import_good(tmp_path, small_dataset, suffix):
    data = read_dataset(small_dataset[0])
    p, a = data["momenta"][:200], data["amplitudes"][:200]
    src = _external(tmp_path, suffix, p, a, "p", "m2")
    out = tmp_path / "imported.h5"
    m = import_dataset(src, out, split=SPLIT, seed=2, momenta_key="p", amplitudes_key="m2", identical=[2, 3, 4])
    back = read_dataset(out)
    assert m["n_points"] == 200 and back["attrs"]["sampling"] == "external"
    assert np.array_equal(back["momenta"], p) and np.array_equal(back["amplitudes"], a)
    assert np.allclose(back["invariants"], data["invariants"][:200])
    assert list(back["attrs"]["identical_legs"]) == [2, 3, 4]


def test_import_bad(tmp_path, small_dataset):
    data = read_dataset(small_dataset[0])
    p, a = data["momenta"][:50].copy(), data["amplitudes"][:50].copy()
    out = tmp_path / "imported.h5"
    cases = [
        (p[:, :, :3], a, "momenta"),            # wrong shape
        (p, a[:40], "amplitudes"),             # wrong length
        (p, np.where(np.arange(50) == 7, np.nan, a), "amplitudes"),   # NaN
        (p, np.where(np.arange(50) == 3, -a, a), "amplitudes"),       # negative
    ]
    pn = p.copy()
    pn[4, 2, 1] = np.inf
    cases.append((pn, a, "momenta"))
    for k, (mom, amp, key) in enumerate(cases):
        src = _external(tmp_path, ".npz", mom, amp)
        with pytest.raises(InputError) as err:
            import_dataset(src, out, split=SPLIT, seed=1)
        assert str(src) in str(err.value) and repr(key) in str(err.value), (k, str(err.value))
    src = _external(tmp_path, ".h5", p, a, akey="me2")
    with pytest.raises(InputError, match="'amplitudes'") as err:
        import_dataset(src, out, split=SPLIT, seed=1)
    assert str(src) in str(err.value)
    with pytest.raises(InputError, match="does not exist"):
        import_dataset(tmp_path / "missing.npz", out, split=SPLIT, seed=1)
    assert not out.exists()


def test_sorted_legs_make_inputs_permutation_invariant(small_dataset):
    p = torch.from_numpy(read_dataset(small_dataset[0])["momenta"][:200])
    for kind in ("invariants", "momenta"):
        fmap = FeatureMap(kind, 5, None, sort=[2, 3, 4]).fit(p, [2, 3, 4])
        ref = fmap(p, torch.float64)
        for perm in ([0, 1, 3, 2, 4], [0, 1, 4, 2, 3]):
            assert torch.equal(fmap(p[:, perm], torch.float64), ref)
        plain = FeatureMap(kind, 5, None).fit(p, [2, 3, 4])
        assert not torch.equal(plain(p[:, [0, 1, 3, 2, 4]], torch.float64), plain(p, torch.float64))
