"""Benchmarks (not part of chute; tests/workflow/test_load.py runs a small load.py)."""
