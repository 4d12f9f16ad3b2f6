"""chute: the operator code (ops/, runs against AWS too), the embedded local AWS (local/, the one
place local differs from cloud) and the CLI over both (cli/). Imports tasks, never infra."""

__version__ = "0.1.0"

DEFAULT_PORT = 4566
"""Where `chute up` and `chute run` serve the embedded AWS endpoint (LocalStack's port)."""
