"""Data contracts: ``model`` (contracts, matching, header plans; pure), ``config`` (contracts.toml)
and ``check`` (per-chunk validation). Imports only ``tasks.errors`` and ``tasks.formats``; polars
only in ``check`` (and lazily in ``config``, to compile patterns) -- Validate imports
``model``/``config`` without it.
"""
