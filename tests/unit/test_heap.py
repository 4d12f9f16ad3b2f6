"""chute.local.heap: the C heap's free pages go back to the system."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc

from chute.local import heap

def anon():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('RssAnon'):
                return int(line.split()[1]) // 1024

blocks = [bytearray(4096) for _ in range(20000)]  # ~80 MiB of C heap in small blocks
keep = [bytearray(4096) for _ in range(10)]  # the heap's top stays in use
del blocks
before = anon()
heap.settle()
print(before, anon(), gc.get_freeze_count() > 0)
"""


def test_settling_returns_the_heaps_free_pages_and_freezes_the_rest() -> None:
    # GIVEN a process that freed ~80 MiB of small blocks below blocks still in use
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    before, after, frozen = done.stdout.split()
    # THEN settling gave most of them back, and froze what is left
    assert int(before) - int(after) > 40, (before, after)
    assert frozen == "True"
