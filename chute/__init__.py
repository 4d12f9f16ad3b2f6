"""chute: the CLI and the embedded local AWS runtime."""

__version__ = "0.1.0"
