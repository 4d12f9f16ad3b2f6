"""Shared test helpers (generated inputs)."""
