"""Stage ``simulate``: Pythia 8 events, FastJet jets and a parametrised fast detector, to ROOT."""
