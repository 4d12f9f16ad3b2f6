"""Helpers shared by test tiers (not tests themselves)."""
