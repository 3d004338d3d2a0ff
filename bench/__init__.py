"""Benchmarks (`make bench`): scripts that print each figure as a ratio against a baseline measured in
the same run (viewer, editing, opening a series, inference, XAI, retraining, export, start-up). Like
tests/, they sit outside the layers and may import any package; nothing imports bench except tests
that reuse a measurement."""
