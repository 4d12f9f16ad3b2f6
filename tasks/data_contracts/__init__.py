"""Data contracts: ``model`` (contracts, matching, header plans; pure), ``config`` (contracts.toml)
and ``check`` (the value rules; the contract as the native core checks it). Imports only
``tasks.errors``, ``tasks.formats`` and, in ``check`` (and lazily in ``config``, to compile
patterns), the native core.
"""
