"""chute: the CLI and the embedded local AWS runtime."""

__version__ = "0.1.0"

DEFAULT_PORT = 4566
"""Where `chute up` and `chute run` serve the embedded AWS endpoint (LocalStack's port)."""
