"""Run the project's Lambda handlers in warm runtime processes, one pool per function.

Like real Lambda: each invocation runs in a process of its own function (so functions never
share ``os.environ`` or module state), processes stay warm between invocations, the function's
timeout is enforced by killing the process, and an exception is reported as
``{"errorType": <class name>, "errorMessage": ...}`` so the state machine's Retry/Catch match it
exactly as on AWS. Workers are forked from one template process that has done the imports
every worker needs (chute.local.lambda_runtime), so a cold start costs ~0.1 s and an idle
runtime keeps no worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
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
``keep_warm`` per function (none by default: a worker forked from the template starts in
~0.1 s), so memory returns after a burst."""

TEMPLATE_COMMAND = (sys.executable, "-m", "chute.local.lambda_runtime", "--template")

SPAWN_TIMEOUT_SECONDS = 60.0
"""How long starting a worker may take (the template's own start included)."""


class WorkerStartFailed(RuntimeError):
    """No worker process could be started for an invocation (fork or template failure)."""


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


class _Template:
    """The template process workers are forked from (``python -m chute.local.lambda_runtime
    --template``), started on first use and again if it died."""

    def __init__(
        self, log_path: Path | None, preload: tuple[str, ...], environment: dict[str, str]
    ) -> None:
        self._log_path = log_path
        self._preload = preload
        self._environment = environment
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None

    def start(self) -> None:
        """Start it now, so the first worker doesn't wait for its imports."""
        with self._lock:
            self._ensure()

    def _ensure(self) -> socket.socket:
        if self._process is not None and self._process.poll() is None and self._control:
            return self._control
        self._stop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log: IO[bytes] | int = self._log_path.open("ab") if self._log_path else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(
                [*TEMPLATE_COMMAND, str(theirs.fileno()), *self._preload],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**self._environment, "PYTHONUNBUFFERED": "1"},
                pass_fds=(theirs.fileno(),),
                # its own process group (and its workers'): a Ctrl-C at the terminal stops
                # chute, which stops them, instead of raising KeyboardInterrupt in every one
                process_group=0,
            )
        finally:
            theirs.close()
            if not isinstance(log, int):
                log.close()
        ours.settimeout(SPAWN_TIMEOUT_SECONDS)
        self._control = ours
        return ours

    def spawn(self, spec: FunctionSpec, log_path: Path | None) -> _Worker:
        message = json.dumps(
            {
                "handler": spec.handler,
                "environment": spec.environment,
                "log": str(log_path) if log_path else None,
            }
        ).encode()
        with self._lock:
            for attempt in (1, 2):  # a template that died is started again, once
                requests_r, requests_w = os.pipe()
                responses_r, responses_w = os.pipe()
                try:
                    control = self._ensure()
                    socket.send_fds(control, [message], [requests_r, responses_w])
                    reply = control.recv(65536)
                    if not reply:
                        raise ConnectionError("the Lambda runtime's template process exited")
                except OSError:
                    for fd in (requests_w, responses_r):
                        os.close(fd)
                    self._stop()
                    if attempt == 2:
                        raise
                    continue
                finally:
                    os.close(requests_r)
                    os.close(responses_w)
                answer = json.loads(reply)
                if "error" in answer:
                    os.close(requests_w)
                    os.close(responses_r)
                    raise RuntimeError(f"could not start a worker: {answer['error']}")
                return _Worker(int(answer["pid"]), requests_w, responses_r)
        raise AssertionError("unreachable")

    def _stop(self) -> None:
        if self._control is not None:
            self._control.close()  # the template returns when it reads the end of its socket
            self._control = None
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None

    def close(self) -> None:
        with self._lock:
            self._stop()


class _Worker:
    """One warm worker process, forked from the template: its pid and its two pipes. It has
    ended when its response pipe reads end-of-file (only it holds the other end)."""

    def __init__(self, pid: int, requests: int, responses: int) -> None:
        self.pid = pid
        self._requests = os.fdopen(requests, "wb")
        self._responses = os.fdopen(responses, "rb")
        self._buffer = b""
        self.ended = False
        self.idle_since = time.monotonic()

    def alive(self) -> bool:
        """For an idle worker (one in an invocation is read by its invocation alone)."""
        if self.ended:
            return False
        ready, _, _ = select.select([self._responses], [], [], 0)
        if ready and not self._buffer:  # an idle worker has nothing to say but its end
            try:
                chunk = os.read(self._responses.fileno(), 65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.ended = True
            self._buffer += chunk
        return not self.ended

    def send(self, request: dict[str, Any]) -> None:
        self._requests.write(json.dumps(request).encode() + b"\n")
        self._requests.flush()

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
                self.ended = True
                raise EOFError("runtime process exited")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        response: dict[str, Any] = json.loads(line)
        return response

    def signal(self, signum: int) -> None:
        if not self.ended:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill(self) -> None:
        """Stop it and wait (bounded) until it has ended."""
        self.signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not self.ended and time.monotonic() < deadline:
            ready, _, _ = select.select([self._responses], [], [], deadline - time.monotonic())
            if ready and not os.read(self._responses.fileno(), 65536):
                self.ended = True
        self._responses.close()
        with contextlib.suppress(OSError):
            self._requests.close()


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
    ``keep_warm`` last of its function. The template imports ``preload`` (handler modules that
    read nothing of their environment at import) in ``environment`` (what every function's
    has in common; a worker's is replaced by its function's whole)."""

    def __init__(
        self,
        log_dir: Path | None = None,
        max_workers: int | None = None,
        *,
        idle_seconds: float = IDLE_SECONDS,
        keep_warm: int = 0,
        preload: tuple[str, ...] = (),
        environment: dict[str, str] | None = None,
    ) -> None:
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()
        self._log_dir = log_dir
        self._template = _Template(
            log_dir / "lambda-template.log" if log_dir else None,
            preload,
            environment if environment is not None else _base_environment(),
        )
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

    def start(self) -> None:
        """Start the template workers are forked from now (its imports take ~0.5 s), so the
        first invocation doesn't wait for it."""
        self._template.start()

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
        return self._template.spawn(
            spec, self._log_dir / f"{spec.name}.log" if self._log_dir else None
        )

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
        except (OSError, RuntimeError) as exc:  # the template could not fork one
            self._release(pool, None, None)
            what = f"could not start a worker for {pool.spec.name}: {exc}"
            raise WorkerStartFailed(what) from exc
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
                worker.kill()
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
        """Run one invocation; never raises for handler failures (they come back as payload).
        Raises WorkerStartFailed when no worker could be started for it (the service's fault,
        not the function's: nothing of the invocation ran)."""
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
            workers = [w for w in pool.running if not w.ended]
        if not workers:
            return None
        workers[0].signal(signum)
        return workers[0].pid

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
        self._template.close()


def _base_environment() -> dict[str, str]:
    return {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}


def _error(error_type: str, message: str) -> InvokeResult:
    return InvokeResult(
        payload=json.dumps({"errorType": error_type, "errorMessage": message}), errored=True
    )
