"""CaloChallenge binnings and HDF5 files: voxel counts, flattening order, layer sums, round trips, chunked
generation, bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from lhcchain.errors import InputError
from lhcchain.showers.geometry import load_geometry
from lhcchain.io import Progress
from lhcchain.showers.io import Showers, in_chunks, read_incident_energies, read_showers, write_showers


@pytest.mark.parametrize("name, n_voxels, n_layers", [("1_photons", 368, 5), ("1_pions", 533, 7), ("2", 6480, 45), ("3", 40500, 45)])
def test_voxel_counts(name: str, n_voxels: int, n_layers: int) -> None:
    geo = load_geometry(name)
    assert geo.n_voxels == n_voxels
    assert len(geo.layers) == n_layers
    r, a = geo.centres()
    assert r.shape == a.shape == (n_voxels,)


def test_photon_layers_and_centres() -> None:
    geo = load_geometry("1_photons")
    assert geo.layer_ids == [0, 1, 2, 3, 12]
    assert [layer.n_alpha for layer in geo.layers] == [1, 10, 10, 1, 1]
    assert geo.alpha_layers == [1, 2]
    r, a = geo.centres()
    # layer 1 starts at voxel 8: angular bin 0 is centred at -pi + pi/10, radial bin 0 at 1 mm
    assert r[8] == pytest.approx(1.0) and a[8] == pytest.approx(-np.pi + np.pi / 10)
    # the 17th voxel of layer 1 is its angular bin 1, radial bin 0 (16 radial bins per angle)
    assert r[8 + 16] == pytest.approx(1.0) and a[8 + 16] == pytest.approx(-np.pi + 3 * np.pi / 10)
    assert r[-1] == pytest.approx(1500.0)  # layer 12's outer bin 1000-2000 mm


@pytest.mark.parametrize("name", ["1_photons", "2"])
def test_flattening_order(name: str) -> None:
    """Voxels run layer by layer, then angular bin, then radial bin (the challenge's order)."""
    geo = load_geometry(name)
    layer, alpha, r = (np.array(v) for v in zip(*[(li, a, rb) for li, lay in enumerate(geo.layers)
                                                     for a in range(lay.n_alpha) for rb in range(lay.n_r)]))
    np.testing.assert_array_equal(geo.index(layer, alpha, r), np.arange(geo.n_voxels))
    np.testing.assert_array_equal(geo.voxel_layer(), layer)


def test_layer_sums() -> None:
    """Dataset 1 photons: 8, 160 (16 x 10), 190 (19 x 10), 5 and 5 voxels in its layers 0, 1, 2, 3, 12."""
    geo = load_geometry("1_photons")
    np.testing.assert_array_equal(geo.layer_sums(np.ones((2, 368))), [[8, 160, 190, 5, 5]] * 2)
    v = np.zeros((1, 368))
    v[0, 8 + 160 + 19 * 3 + 4] = 7.0  # layer 2, angular bin 3, radial bin 4
    v[0, -1] = 1.5
    np.testing.assert_array_equal(geo.layer_sums(v), [[0, 0, 7.0, 0, 1.5]])


def test_unknown_binning() -> None:
    with pytest.raises(InputError, match="neither a shipped dataset"):
        load_geometry("4_electrons")


def test_hdf5_round_trip(tmp_path) -> None:
    geo = load_geometry("1_photons")
    rng = np.random.default_rng(1)
    sh = Showers(2.0 ** rng.integers(8, 23, 50).astype(float), rng.exponential(10.0, (50, geo.n_voxels)).astype(np.float32))
    path = tmp_path / "s.h5"
    write_showers(path, sh)
    with h5py.File(path) as f:
        assert f["incident_energies"].shape == (50, 1) and f["showers"].shape == (50, 368)
    back = read_showers(path, geo)
    np.testing.assert_allclose(back.energy, sh.energy)
    np.testing.assert_array_equal(back.voxels, sh.voxels)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".staging")]


def test_incident_energies_without_the_showers(tmp_path) -> None:
    path = tmp_path / "e.h5"
    _write(path, incident_energies=np.array([[256.0], [1024.0], [512.0]]))  # no 'showers': they are not read
    np.testing.assert_array_equal(read_incident_energies(path), [256.0, 1024.0, 512.0])
    for data, message in (({"showers": np.ones((3, 368))}, "missing dataset\\(s\\) \\['incident_energies'\\]"),
                          ({"incident_energies": np.array([[1e3], [-1.0]])}, "must be finite and > 0"),
                          ({"incident_energies": np.zeros((0, 1))}, "holds no showers"),
                          ({"incident_energies": np.ones((3, 2))}, "has shape \\(3, 2\\)")):
        _write(path, **data)
        with pytest.raises(InputError, match=message):
            read_incident_energies(path)
    path.write_text("no")
    with pytest.raises(InputError, match="not a readable HDF5"):
        read_incident_energies(path)


def test_in_chunks() -> None:
    """Chunks of at most ``size`` energies in order, results concatenated, every shower counted."""
    sizes = []

    def make(e: np.ndarray) -> np.ndarray:
        sizes.append(len(e))
        return np.stack([e, 2 * e], 1)

    progress = Progress("test", 10, "showers")
    out = in_chunks(make, np.arange(10.0), 4, progress)
    assert sizes == [4, 4, 2] and progress.count == 10
    np.testing.assert_array_equal(out, np.stack([np.arange(10.0), 2 * np.arange(10.0)], 1))


def _write(path, **data) -> None:
    with h5py.File(path, "w") as f:
        for key, value in data.items():
            f.create_dataset(key, data=value)


@pytest.mark.parametrize("data, message", [
    ({"incident_energies": np.ones((3, 1)) * 1e3, "showers": np.ones((3, 533))}, "expects \\(N, 368\\)"),
    ({"incident_energies": np.ones((3, 1)) * 1e3, "showers": -np.ones((3, 368))}, "negative or non-finite"),
    ({"showers": np.ones((3, 368))}, "missing dataset\\(s\\) \\['incident_energies'\\]"),
    ({"incident_energies": np.zeros((3, 1)), "showers": np.ones((3, 368))}, "must be finite and > 0"),
])
def test_bad_files(tmp_path, data, message) -> None:
    path = tmp_path / "bad.h5"
    _write(path, **data)
    with pytest.raises(InputError, match=message) as err:
        read_showers(path, load_geometry("1_photons"))
    assert str(path) in str(err.value)


def test_not_hdf5(tmp_path) -> None:
    path = tmp_path / "x.h5"
    path.write_text("no")
    with pytest.raises(InputError, match="not a readable HDF5"):
        read_showers(path, load_geometry("1_photons"))
