"""Data shipped with Delineate (models, sample index, benchmark tables, icons): a package so that an
installed copy carries it beside the code (formats.samples and inference.registry find it there)."""
