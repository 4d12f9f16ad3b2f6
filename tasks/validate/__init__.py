"""Validate: cheap structural checks on the staged object, and the plan for the conversion."""
