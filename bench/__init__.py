"""Benchmarks, each run as a script: `PYTHONPATH=. python3 bench/X.py` (see README.md)."""
