"""chute's workflow steps: one package per step (handler -> domain -> adapters)."""
