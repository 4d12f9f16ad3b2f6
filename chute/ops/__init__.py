"""Operator code that runs against the embedded runtime and AWS alike (public AWS APIs only).

May import tasks and chute (top level); never chute.local or chute.cli."""
