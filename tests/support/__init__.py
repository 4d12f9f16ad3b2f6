"""Helpers shared by the test tiers (not tests themselves): one module per tier (unit,
pipeline, synth, up), generated inputs (corpus), the accounting of outcomes (accounting).
Each tier's conftest.py holds only its pytest fixtures."""
