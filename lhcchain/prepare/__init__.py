"""Stage ``prepare``: read event files (ROOT or LHE), select, and write per-event features to parquet."""
