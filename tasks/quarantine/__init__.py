"""Quarantine: move a rejected original to the quarantine bucket with an error report."""
