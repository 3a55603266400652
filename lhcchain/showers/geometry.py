"""CaloChallenge voxel geometry read from a binning XML file.

A binning file (``lhcchain/data/calochallenge/binning_dataset_*.xml``, from the CaloChallenge
repository ``CaloChallenge/homepage``, ``code/``) lists per layer the radial bin edges in mm
(``r_edges``) and the number of angular bins (``n_bin_alpha``). A layer with the single edge ``0``
has no voxels. Voxels are flattened layer by layer, then angular bin, then radial bin, the order the
challenge's HDF5 files use. As in the challenge's ``XMLHandler``, a voxel's centre is the midpoint
of its radial bin and of its angular bin, the angular bins dividing ``[-pi, pi)`` evenly; the
transverse coordinates of the high-level features are ``x = r cos(alpha)`` ("eta") and
``y = r sin(alpha)`` ("phi"), in mm.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import package_file
from ..errors import InputError

DATASETS = ("1_photons", "1_pions", "2", "3")  # binnings shipped in lhcchain/data/calochallenge


@dataclass(frozen=True)
class Layer:
    """One longitudinal layer: its id in the XML, radial edges (mm) and number of angular bins."""

    id: int
    r_edges: np.ndarray
    n_alpha: int

    @property
    def n_r(self) -> int:
        return len(self.r_edges) - 1

    @property
    def n_voxels(self) -> int:
        return self.n_r * self.n_alpha


@dataclass(frozen=True)
class Geometry:
    """All layers of a binning (module doc); ``layers`` keeps only layers that have voxels."""

    name: str
    particle: str
    layers: tuple[Layer, ...]

    @property
    def n_voxels(self) -> int:
        return sum(layer.n_voxels for layer in self.layers)

    @property
    def layer_ids(self) -> list[int]:
        return [layer.id for layer in self.layers]

    @property
    def bounds(self) -> np.ndarray:
        """Voxel index where each layer starts, plus the total: (n_layers + 1,)."""
        return np.concatenate([[0], np.cumsum([layer.n_voxels for layer in self.layers])])

    @property
    def alpha_layers(self) -> list[int]:
        """Positions (in ``layers``) of the layers binned in angle: the ones with centre/width features."""
        return [i for i, layer in enumerate(self.layers) if layer.n_alpha > 1]

    def index(self, layer: np.ndarray, alpha_bin: np.ndarray, r_bin: np.ndarray) -> np.ndarray:
        """Flat voxel index of (layer position, angular bin, radial bin)."""
        layer = np.asarray(layer)
        n_r = np.array([lay.n_r for lay in self.layers])[layer]
        return self.bounds[layer] + np.asarray(alpha_bin) * n_r + np.asarray(r_bin)

    def voxel_layer(self) -> np.ndarray:
        """Layer position of every voxel: (n_voxels,)."""
        return np.repeat(np.arange(len(self.layers)), [layer.n_voxels for layer in self.layers])

    def layer_sums(self, voxels: np.ndarray) -> np.ndarray:
        """Sum of each layer's voxels: (N, n_voxels) -> (N, n_layers), e.g. layer energies in MeV."""
        b = self.bounds
        return np.stack([voxels[:, lo:hi].sum(1) for lo, hi in zip(b[:-1], b[1:])], 1)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Radial (mm) and angular (rad) centre of every voxel, in the flattening order: (n_voxels,) each."""
        r, a = [], []
        for layer in self.layers:
            r_mid = 0.5 * (layer.r_edges[1:] + layer.r_edges[:-1])
            a_edges = np.linspace(-np.pi, np.pi, layer.n_alpha + 1)
            a_mid = 0.5 * (a_edges[1:] + a_edges[:-1])
            r.append(np.tile(r_mid, layer.n_alpha))
            a.append(np.repeat(a_mid, layer.n_r))
        return np.concatenate(r), np.concatenate(a)

    def xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Voxel centres ``x = r cos(alpha)``, ``y = r sin(alpha)`` in mm (the challenge's eta and phi)."""
        r, a = self.centres()
        return r * np.cos(a), r * np.sin(a)


def load_geometry(binning: str | os.PathLike[str]) -> Geometry:
    """Geometry of a binning XML: a path, or a shipped dataset name (``1_photons``, ``1_pions``, ``2``, ``3``)."""
    name = str(binning)
    path = package_file(f"calochallenge/binning_dataset_{name}.xml") if name in DATASETS else Path(name)
    if name not in DATASETS and not path.is_file():
        raise InputError(f"showers: binning {name!r} is neither a shipped dataset ({', '.join(DATASETS)}) nor an existing XML file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise InputError(f"{path}: not a readable binning XML: {exc}") from exc
    bins = root.findall("Bin")
    if len(bins) != 1:
        raise InputError(f"{path}: expected one <Bin> element under <Bins>, found {len(bins)}")
    layers = []
    for elem in bins[0].findall("Layer"):
        try:
            lid, n_alpha = int(elem.attrib["id"]), int(elem.attrib["n_bin_alpha"])
            edges = np.array([float(v) for v in elem.attrib["r_edges"].split(",")])
        except (KeyError, ValueError) as exc:
            raise InputError(f"{path}: <Layer> needs integer 'id', 'n_bin_alpha' and comma-separated 'r_edges' ({exc})") from exc
        if len(edges) > 1 and (np.any(np.diff(edges) <= 0) or n_alpha < 1):
            raise InputError(f"{path}: layer {lid} needs increasing r_edges and n_bin_alpha >= 1")
        if len(edges) > 1:
            layers.append(Layer(lid, edges, n_alpha))
    if not layers:
        raise InputError(f"{path}: no layer has voxels")
    return Geometry(Path(path).stem, bins[0].attrib.get("name", ""), tuple(layers))
