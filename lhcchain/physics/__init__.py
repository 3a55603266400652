"""Physics core: exact matrix elements, PDFs and phase space, in batched torch.

Conventions (every module in this package follows them):

* Units: GeV for energies, momenta and masses; cross-sections in pb unless a name says otherwise
  (1 GeV^-2 = 0.3893793721e9 pb).
* Metric (+,-,-,-). A four-momentum is ``(E, px, py, pz)``; a batch of events is a tensor of
  shape ``(batch, n_particles, 4)``. For a 2 -> n process the two incoming particles come first
  (beam 1 along +z, then beam 2 along -z), then the outgoing ones in the order the process lists.
* dtype and device follow the inputs: float64 and float32 are both supported, complex
  intermediates use complex128 / complex64 accordingly, and nothing moves tensors to the CPU.
* Batched: no Python loop over events. Loops over particles, helicities or colour orderings
  (small, fixed counts) are fine.
* ``|M|^2`` is averaged over initial-state spins and colours and summed over final-state ones.
  Identical-particle symmetry factors of the final state are *not* included; the process that
  integrates them applies them.
* Strong coupling: ``g_s = sqrt(4 pi alpha_s)``; a matrix element takes ``alpha_s`` explicitly.
"""

from .._lazy import lazy_attributes

__all__ = ["GEV2_TO_PB", "Process", "Subprocess", "get_process", "process_names"]

_LAZY = {
    "GEV2_TO_PB": "process",
    "Process": "process",
    "Subprocess": "process",
    "get_process": "processes",
    "process_names": "processes",
}

__getattr__ = lazy_attributes(__name__, _LAZY)
