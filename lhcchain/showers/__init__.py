"""Stage ``showers``: calorimeter showers in the CaloChallenge format.

* :mod:`.geometry`: voxel binnings from the challenge's XML files;
* :mod:`.io`: CaloChallenge HDF5 files;
* :mod:`.reference`: GFLASH-style parametrised electromagnetic showers (the reference simulation);
* :mod:`.evaluate`: the challenge's high-level features, separation powers, FPD/KPD, classifier tests.
"""
