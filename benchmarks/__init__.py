"""Benchmark suites comparing runyard with MLflow, trackio and FastTrackML.

Run it from the repository root with ``python -m benchmarks``; see
``benchmarks/README.md``. Importing this package must stay cheap and free of
third-party imports: the workload scripts in it are also executed by other
interpreters (the MLflow and trackio virtual environments).
"""
