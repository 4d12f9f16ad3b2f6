"""Hold one step of one file at its door: the embedded runtime's hook for deterministic race
tests (and for rehearsing races by hand). A held invocation waits, before any of its code runs,
until the hold is released (or times out, then it runs anyway: nothing waits forever)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEOUT_SECONDS = 120.0


@dataclass
class Hold:
    """``step``: a Lambda step name (validate, convert, archive, quarantine) or ``batch``;
    ``key``: the staged key whose invocation is held (the first one that comes)."""

    step: str
    key: str
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def wait_reached(self, timeout: float = 60.0) -> None:
        if not self.reached.wait(timeout):
            raise TimeoutError(f"no {self.step} invocation for {self.key!r} within {timeout}s")

    def release(self) -> None:
        self.released.set()


class Holds:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[Hold] = []

    def add(self, step: str, key: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Hold:
        hold = Hold(step=step, key=key, timeout=timeout)
        with self._lock:
            self._waiting.append(hold)
        return hold

    def pass_through(self, step: str, payload: Any) -> None:
        """Called at the door of every invocation: blocks while a hold matches it."""
        with self._lock:
            if not self._waiting:
                return
            text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
            hold = next(
                (h for h in self._waiting if h.step == step and _names_key(text, h.key)), None
            )
            if hold is None:
                return
            self._waiting.remove(hold)
        hold.reached.set()
        hold.released.wait(hold.timeout)


def _names_key(text: str, key: str) -> bool:
    needle = json.dumps(key, ensure_ascii=False)
    return f'"key": {needle}' in text or f'"key":{needle}' in text
