"""chute's workflow steps: one package per step (handler -> domain -> adapters), plus what they
share: ``entry`` (the handlers' decorator), ``formats/``, ``data_contracts/``, ``workflow``,
``models``, ``errors``, ``settings``, ``names``, ``log``, ``metrics``. Steps import the shared
modules, never each other's handler; only ``adapters/`` imports boto3
(tests/unit/test_layers.py)."""
