"""The local Lambda runtime's processes.

``python -m chute.local.lambda_runtime --template FD [MODULE ...]`` is the template (a fork
server): it imports what every worker needs (boto3, botocore's data files, powertools, the
handler modules) once, then forks a worker for each request on the socket FD. A worker takes
its function's environment, finds its handler already imported (its cold start is its first
clients: ~0.05 s, against ~0.5 s for a fresh interpreter) and serves invocations one at a
time, like Lambda's runtime interface: requests are JSON lines on its request pipe, each
response one JSON line on its response pipe (stdout/stderr stay free for the handler's logs,
appended to its function's log file). An exception is reported as
``{"errorType": <class name>, "errorMessage": ...}``.

Workers share the template's pages until they write them, so an idle runtime keeps no warm
worker and a busy one pays for each worker's own state only (docs/decisions.md, 2026-12-07).
"""

from __future__ import annotations

import array
import importlib
import json
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

from chute.local import heap

PRELOAD_MODULES = (
    "boto3",
    "botocore.client",
    "s3transfer.manager",
    "aws_lambda_powertools",
    "aws_lambda_powertools.logging",
    "chute.local.iam",
)
"""Imported by the template: every worker would import them (boto3 alone is ~0.2 s, ~19 MiB)."""

PRELOAD_CLIENTS = ("s3", "stepfunctions", "sqs")
"""Services whose botocore data files (model, endpoint rules, endpoints, partitions, retry
rules) the template parses: the first client of a fresh process spends ~0.1 s and ~14 MiB on
them."""

MAX_MESSAGE = 1 << 20


class Context:
    """The parts of the Lambda context object handlers use."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.invoked_function_arn = (
            f"arn:aws:lambda:local:000000000000:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def serve(handler_path: str, requests: Any, responses: Any) -> None:
    module_name, _, func_name = handler_path.rpartition(".")
    handler = getattr(importlib.import_module(module_name), func_name)
    for line in requests:
        request = json.loads(line)
        context = Context(request["requestId"], request["deadlineMs"])
        try:
            result = handler(request["event"], context)
            response = {"ok": True, "payload": json.dumps(result)}
        except Exception as exc:
            traceback.print_exc()
            error = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "requestId": request["requestId"],
                "stackTrace": traceback.format_exception(exc)[-5:],
            }
            response = {"ok": False, "payload": json.dumps(error)}
        responses.write(json.dumps(response) + "\n")
        responses.flush()


# --- the template ---------------------------------------------------------------------------
_DATA_FILES: dict[str, Any] = {}


def _share_botocore_data() -> None:
    """Every botocore loader in this process (and in workers forked from it) reads a data file
    once: the parsed file is kept by path. botocore already hands the same parsed data to every
    client of a session; this extends that to every session."""
    from botocore import loaders

    class SharedDataFiles(loaders.JSONFileLoader):  # type: ignore[misc]
        def load_file(self, file_path: str) -> Any:
            if file_path not in _DATA_FILES:
                _DATA_FILES[file_path] = super().load_file(file_path)
            return _DATA_FILES[file_path]

    loaders.Loader.FILE_LOADER_CLASS = SharedDataFiles


def preload(handler_modules: Sequence[str] = ()) -> None:
    """The imports every worker makes, and ``handler_modules`` (chute's handlers read nothing
    of their environment at import: tests/unit/test_handler_imports.py). A module that fails
    to import here is left to the worker, whose cold start reports it."""
    for name in PRELOAD_MODULES:
        importlib.import_module(name)
    for name in handler_modules:
        try:
            importlib.import_module(name)
        except Exception:
            traceback.print_exc()
    _share_botocore_data()
    import boto3

    session = boto3.Session(
        aws_access_key_id="template", aws_secret_access_key="template", region_name="us-east-1"
    )
    for service in PRELOAD_CLIENTS:  # no request is made: a client connects on first use
        session.client(service, endpoint_url="http://127.0.0.1:9")


def template(control: socket.socket, handler_modules: Sequence[str] = ()) -> None:
    """Fork a worker for each request on ``control`` (its function's handler, environment and
    log file, with its request and response pipes attached), answering with its pid; return
    when the runtime closes the socket."""
    preload(handler_modules)
    heap.settle()  # the collector leaves the template's objects alone: their pages stay shared
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        fds = array.array("i")
        message, ancillary, _, _ = control.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(2 * fds.itemsize))
        if not message:
            return
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        try:
            request = json.loads(message)
            if len(fds) != 2:
                raise ValueError(f"a worker needs its two pipes, got {len(fds)}")
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                control.close()
                _worker(request, fds[0], fds[1])  # never returns
            reply: dict[str, Any] = {"pid": pid}
        except Exception as exc:  # the runtime is told, the template keeps serving
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            for fd in fds:
                os.close(fd)
        control.send(json.dumps(reply).encode())


def _reap(signum: int, frame: Any) -> None:
    """Collect ended workers (they are the template's children)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _worker(request: dict[str, Any], requests_fd: int, responses_fd: int) -> None:
    """In the forked child: become a worker of the requested function."""
    code = 0
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log = request.get("log")
        out = os.open(log or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        # Every worker of a function appends to its one log file: each line is written whole,
        # in one write on O_APPEND. The template runs unbuffered (PYTHONUNBUFFERED), where
        # print() writes a line's text and its newline apart and another worker's line could
        # land between them; the streams are reconfigured in place (loggers keep them).
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(line_buffering=True, write_through=False)  # type: ignore[union-attr]
        requests = os.fdopen(requests_fd, "r", encoding="utf-8")
        responses = os.fdopen(responses_fd, "w", encoding="utf-8")
        environment: dict[str, str] = request["environment"]
        os.environ.clear()
        os.environ.update(environment)
        paths = environment.get("PYTHONPATH", "").split(os.pathsep)
        sys.path[:0] = [p for p in paths if p and p not in sys.path]
        from chute.local import iam  # the function's role, as the stack has it

        iam.install_from_environment()
        with requests, responses:
            serve(request["handler"], requests, responses)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    if sys.argv[1:2] != ["--template"] or len(sys.argv) < 3:
        sys.exit("usage: python -m chute.local.lambda_runtime --template FD [MODULE ...]")
    with socket.socket(fileno=int(sys.argv[2])) as control:
        template(control, sys.argv[3:])


if __name__ == "__main__":
    # run the module's own copy, not this __main__ one: workers import it (its _DATA_FILES)
    from chute.local import lambda_runtime

    lambda_runtime.main()
