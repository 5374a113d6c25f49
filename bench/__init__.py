"""Benchmarks: run by hand (``python bench/worker_throughput.py``), not part of the test suite."""
