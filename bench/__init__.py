"""Benchmarks (run as modules, e.g. ``python -m bench.lineage``); not part of the package."""
