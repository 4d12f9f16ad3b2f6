"""The engine's sink calls, in file order, on a thread of their own."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Buffer

Sink = Callable[["Buffer"], object]
"""Takes output bytes: ``bytes``, or the native core's JSON Lines lent without a copy."""


class OrderedWrites:
    """The sink calls, in order, on one thread of their own: while a chunk's output is
    written (a file's pages, an S3 part upload) the next blocks are read, decompressed and
    converted. At most ``depth`` calls wait, so memory stays bounded; a sink's error is raised
    by the next ``submit`` or by ``drain``."""

    def __init__(self, depth: int) -> None:
        self._depth = depth
        self._pending: deque[Future[object]] = deque()
        self._thread: ThreadPoolExecutor | None = None

    def submit(self, sink: Sink, data: Buffer) -> None:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink")
        self._pending.append(self._thread.submit(sink, data))
        while len(self._pending) > self._depth or (self._pending and self._pending[0].done()):
            self._pending.popleft().result()

    def drain(self) -> None:
        """Waits for every write (raising the first error)."""
        while self._pending:
            self._pending.popleft().result()
        self._close()

    def abandon(self) -> None:
        """After a failure: writes not started are dropped, the one running is waited for (the
        caller discards the output next, so nothing may still be writing to it)."""
        for pending in self._pending:
            pending.cancel()
        self._pending.clear()
        self._close()

    def _close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
