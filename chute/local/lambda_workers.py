"""Run the project's Lambda handlers in warm runtime processes, one pool per function.

Like real Lambda: each invocation runs in a process of its own function (so functions never
share ``os.environ`` or module state), processes stay warm between invocations, the function's
timeout is enforced by killing the process, and an exception is reported as
``{"errorType": <class name>, "errorMessage": ...}`` so the state machine's Retry/Catch match it
exactly as on AWS.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


def default_pool_size() -> int:
    """Workers per function: one per core (at least 2). More processes than cores only add
    memory: every invocation is CPU work in a worker or in the endpoint itself."""
    return max(2, os.cpu_count() or 2)


IDLE_SECONDS = 30.0
"""A worker idle this long is stopped (as Lambda reclaims idle sandboxes), down to
``keep_warm`` per function, so memory returns after a burst."""


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str  # "package.module.function"
    environment: dict[str, str]
    timeout_seconds: float


@dataclass
class InvokeResult:
    payload: str
    errored: bool
    logs: str = ""


class _Worker:
    """One warm runtime process (``python -m chute.local.lambda_runtime``)."""

    def __init__(self, spec: FunctionSpec, log_path: Path | None) -> None:
        read_fd, write_fd = os.pipe()
        env = {**spec.environment, "CHUTE_RUNTIME_FD": str(write_fd)}
        log: IO[bytes] | int = log_path.open("ab") if log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "chute.local.lambda_runtime", spec.handler],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                pass_fds=(write_fd,),
                # its own process group: a Ctrl-C at the terminal stops chute, which stops its
                # workers, instead of raising KeyboardInterrupt in every one of them
                process_group=0,
            )
        finally:
            os.close(write_fd)
            if not isinstance(log, int):
                log.close()
        self._responses = os.fdopen(read_fd, "rb")
        self._buffer = b""
        self.idle_since = time.monotonic()

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, request: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        self.process.stdin.flush()

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next response, or None if the deadline passed first. EOFError if it died."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._responses], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self._responses.fileno(), 65536)
            if not chunk:
                raise EOFError("runtime process exited")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        response: dict[str, Any] = json.loads(line)
        return response

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        self._responses.close()
        if self.process.stdin:
            self.process.stdin.close()


@dataclass(eq=False)
class _Waiter:
    """An invocation waiting for a worker: a releasing invocation hands it its worker (or, when
    that worker died, its slot to start a new one)."""

    handed: threading.Event = field(default_factory=threading.Event)
    worker: _Worker | None = None


@dataclass
class _Pool:
    spec: FunctionSpec
    idle: list[_Worker] = field(default_factory=list)
    busy: int = 0
    """Workers in an invocation or starting, and slots handed to a waiter."""
    running: set[_Worker] = field(default_factory=set)
    cond: threading.Condition = field(default_factory=threading.Condition)
    waiting: deque[_Waiter] = field(default_factory=deque)
    """Invocations waiting for a worker, first come first served: under a backlog each file
    passes each function in the order it got there, instead of every file waiting for about
    the whole backlog (issue 25)."""


class LambdaWorkers:
    """Pools of warm worker processes keyed by function name: at most ``max_workers`` per
    function; a worker idle for ``idle_seconds`` is stopped unless it is one of the
    ``keep_warm`` last of its function."""

    def __init__(
        self,
        log_dir: Path | None = None,
        max_workers: int | None = None,
        *,
        idle_seconds: float = IDLE_SECONDS,
        keep_warm: int = 1,
    ) -> None:
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()
        self._log_dir = log_dir
        self._max_workers = max_workers or default_pool_size()
        self._idle_seconds = idle_seconds
        self._keep_warm = keep_warm
        self._closed = False
        self._stopping = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, daemon=True, name="lambda-reaper")
        self._reaper.start()

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def warm(self, spec: FunctionSpec) -> None:
        """Start one worker of ``spec`` now (its cold start runs while nothing waits for it),
        unless the function already has one."""
        pool = self._pool(spec)
        with pool.cond:
            if self._closed or pool.idle or pool.busy:
                return
            pool.busy += 1
        try:
            worker = self._spawn(spec)
        except BaseException:
            self._release(pool, None, None)
            raise
        if self._closed:
            worker.kill()
            worker = None
        self._release(pool, worker, None)  # to an invocation already waiting, or idle

    def workers(self, function_name: str) -> int:
        """Live worker processes of a function (idle and busy)."""
        with self._lock:
            pool = self._pools.get(function_name)
        if pool is None:
            return 0
        with pool.cond:
            return len([w for w in pool.idle if w.alive()]) + len(pool.running)

    def _reap_loop(self) -> None:
        while not self._stopping.wait(min(5.0, max(0.05, self._idle_seconds / 4))):
            self.reap()

    def reap(self) -> None:
        """Stop workers idle for longer than ``idle_seconds``, oldest first, keeping
        ``keep_warm`` per function."""
        now = time.monotonic()
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            doomed: list[_Worker] = []
            with pool.cond:
                pool.idle[:] = [w for w in pool.idle if w.alive()]
                spare = len(pool.idle) + pool.busy - self._keep_warm
                for worker in sorted(pool.idle, key=lambda w: w.idle_since):
                    if spare <= 0:
                        break
                    if now - worker.idle_since >= self._idle_seconds:
                        doomed.append(worker)
                        spare -= 1
                pool.idle[:] = [w for w in pool.idle if w not in doomed]
            for worker in doomed:
                worker.kill()

    def _pool(self, spec: FunctionSpec) -> _Pool:
        with self._lock:
            pool = self._pools.get(spec.name)
            if pool is None or pool.spec != spec:
                if pool is not None:  # configuration changed: retire the old warm workers
                    for worker in pool.idle:
                        worker.kill()
                pool = _Pool(spec)
                self._pools[spec.name] = pool
            return pool

    def _spawn(self, spec: FunctionSpec) -> _Worker:
        return _Worker(spec, self._log_dir / f"{spec.name}.log" if self._log_dir else None)

    def _acquire(self, pool: _Pool) -> _Worker:
        with pool.cond:
            if self._closed:
                raise RuntimeError("embedded runtime is shutting down")
            worker = self._take_idle(pool) if not pool.waiting else None
            if worker is not None:
                return worker
            if pool.waiting or pool.busy >= self._max_workers:
                waiter = _Waiter()
                pool.waiting.append(waiter)
            else:
                waiter = None
                pool.busy += 1  # a slot: start a worker
        if waiter is not None:
            while not waiter.handed.wait(timeout=5):
                with pool.cond:
                    if self._closed and not waiter.handed.is_set():
                        pool.waiting.remove(waiter)
                        raise RuntimeError("embedded runtime is shutting down")
            if waiter.worker is not None:
                return waiter.worker
            if self._closed:
                raise RuntimeError("embedded runtime is shutting down")
        try:
            worker = self._spawn(pool.spec)
        except BaseException:
            self._release(pool, None, None)
            raise
        with pool.cond:
            pool.running.add(worker)
        return worker

    @staticmethod
    def _take_idle(pool: _Pool) -> _Worker | None:
        while pool.idle:
            worker = pool.idle.pop()
            if worker.alive():
                pool.busy += 1
                pool.running.add(worker)
                return worker
        return None

    def _release(self, pool: _Pool, worker: _Worker | None, used: _Worker | None) -> None:
        """``used`` is done; ``worker`` (the same process, or None when it was stopped) goes to
        the first waiting invocation, else back to the idle ones."""
        with pool.cond:
            if used is not None:
                pool.running.discard(used)
            if worker is not None and self._closed:
                worker = None
            if pool.waiting:
                waiter = pool.waiting.popleft()
                waiter.worker = worker  # None: the waiter starts one in this slot
                if worker is not None:
                    pool.running.add(worker)
                waiter.handed.set()
                return
            pool.busy -= 1
            if worker is not None:
                worker.idle_since = time.monotonic()
                pool.idle.append(worker)

    def invoke(self, spec: FunctionSpec, event: Any) -> InvokeResult:
        """Run one invocation; never raises for handler failures (they come back as payload)."""
        pool = self._pool(spec)
        request_id = str(uuid.uuid4())
        event_obj = json.loads(event) if isinstance(event, str) else event
        deadline_ms = int((time.time() + spec.timeout_seconds) * 1000)
        worker = self._acquire(pool)
        try:
            worker.send({"requestId": request_id, "deadlineMs": deadline_ms, "event": event_obj})
            response = worker.receive(spec.timeout_seconds)
            if response is not None:
                self._release(pool, worker, worker)
                return InvokeResult(payload=response["payload"], errored=not response["ok"])
            worker.kill()
            self._release(pool, None, worker)
            return _error(
                "Sandbox.Timedout",
                f"RequestId: {request_id} Error: Task timed out after "
                f"{spec.timeout_seconds:.2f} seconds",
            )
        except (EOFError, OSError, BrokenPipeError):
            worker.kill()
            self._release(pool, None, worker)
            return _error(
                "Runtime.ExitError",
                f"RequestId: {request_id} Error: Runtime exited without providing a reason",
            )

    def signal_running(self, function_name: str, signum: int) -> int | None:
        """Send ``signum`` to one worker of ``function_name`` that is in an invocation (fault
        injection: a worker dying mid-invocation). The pid, or None if none is busy."""
        with self._lock:
            pool = self._pools.get(function_name)
        if pool is None:
            return None
        with pool.cond:
            workers = [w for w in pool.running if w.alive()]
        if not workers:
            return None
        workers[0].process.send_signal(signum)
        return int(workers[0].process.pid)

    def close(self) -> None:
        self._closed = True
        self._stopping.set()
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            with pool.cond:
                for worker in pool.idle:
                    worker.kill()
                pool.idle.clear()
                for waiter in pool.waiting:
                    waiter.handed.set()
                pool.waiting.clear()
                pool.cond.notify_all()


def _error(error_type: str, message: str) -> InvokeResult:
    return InvokeResult(
        payload=json.dumps({"errorType": error_type, "errorMessage": message}), errored=True
    )
