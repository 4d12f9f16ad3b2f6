"""``python -m chute.cli``: the same as the ``chute`` command."""

from chute.cli import main

main()
