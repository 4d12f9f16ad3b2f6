"""The CLI's consoles: tables for people; piped output (CI, make) isn't squeezed to 80 columns."""

from __future__ import annotations

import os
import sys

from rich.console import Console

console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 140)
err = Console(stderr=True)
