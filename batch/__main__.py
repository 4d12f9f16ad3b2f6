"""``python -m batch``: the container command (``tasks.names.BATCH_COMMAND``)."""

from __future__ import annotations

import os
import sys

from batch.entrypoint import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))
