"""Benchmarks: `make bench` (all) or `python -m benchmarks NAME…`; each prints its figures."""
