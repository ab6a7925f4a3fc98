"""Benchmarks: each `bench_*.py` is a script printing figures as ratios against a baseline it runs
in the same process. `python -m bench` runs them all (see bench/__main__.py)."""
