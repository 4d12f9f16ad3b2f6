"""``python -m batch``: the container command (``tasks.names.BATCH_COMMAND``)."""

from __future__ import annotations

import os
import sys

from batch.entrypoint import main, stop_on_sigterm

if __name__ == "__main__":
    stop_on_sigterm()
    sys.exit(main(sys.argv[1:], os.environ))
