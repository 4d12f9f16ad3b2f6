"""End-to-end helpers: a running `chute up`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Up:
    endpoint: str
    grant_url: str
