"""Step Functions (moto's interpreter, ``moto.stepfunctions.parser``): where it differs from AWS,
its speed, and the hooks of an execution's start and end.

Behaviour: StartExecution without a name yields the name "None"; a Fail state whose ErrorPath
yields a States.* name (a Batch States.TaskFailed passed on) ends in States.Runtime;
``batch:submitJob(.sync)`` passes ASL casing (JobName) to botocore, so the request fails with
States.Runtime 'JobName' (getmoto/moto#10076), and its results keep botocore casing (jobId,
container.exitCode) where AWS gives JobId, Container.ExitCode (.sync then fails on 'JobId').

Speed (the embedded runtime's own CPU per file; bench/throughput.py, docs/decisions.md): every
execution lexes, parses and preprocesses the whole definition (ANTLR; ~70 % of the endpoint's
CPU per small file), so the program is now built once per definition and shared (its components
are stateless: each execution's values live in its own Environment); every Task state creates a
new boto3 client to call back into the endpoint over HTTP, now one per (service, region) is
reused and answered by moto's backends in this process; every path evaluation builds a new
JSONPath parser (PLY tables), now remembered; state data (inputs, results, parameters, history
events) is copied as JSON rather than by ``copy.deepcopy``.
"""

from __future__ import annotations

import copy
import functools
import importlib
import re
import threading
import time
import uuid
from typing import Any

import botocore.exceptions
import botocore.session
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch import (  # noqa: E501
    StateTaskServiceBatch,
)
from moto.stepfunctions.parser.asl.component.state.fail import state_fail
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import boto_client as sfn_boto_client
from moto.stepfunctions.parser.asl.utils import json_path as sfn_json_path
from moto.stepfunctions.parser.backend.execution import (
    BaseExecutionWorkerCommunication,
)
from moto.stepfunctions.parser.backend.execution import Execution as SfnExecution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from chute.local.moto_patches.seam import HOOKS, Fixes, Kind

FIXES = Fixes()


# --- hooks ------------------------------------------------------------------------------------
class _ScaledTime:
    """Stands in for the ``time`` module inside moto's retrier: only ``sleep`` is scaled."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(max(0.0, seconds * HOOKS.time_scale))


@FIXES.declare(
    "retry-time-scale",
    Kind.HOOK,
    retrier_decl,
    "time",
    why="Retry waits are real time; scale them so tests and demos don't sleep",
)
def _retry_time(original: Any) -> Any:
    return _ScaledTime()


# --- behaviour --------------------------------------------------------------------------------
@FIXES.declare(
    "sfn-unnamed-execution",
    Kind.BEHAVIOUR,
    StepFunctionsParserBackend,
    "start_execution",
    why="StartExecution without a name yields an execution named 'None'",
)
def _sfn_named_execution(original: Any) -> Any:
    def start_execution(
        self: Any, state_machine_arn: str, name: str | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    return start_execution


@FIXES.declare(
    "sfn-fail-states-error",
    Kind.BEHAVIOUR,
    state_fail,
    "CustomErrorName",
    why="Fail with an ErrorPath yielding States.* ends in States.Runtime",
)
def states_error_name(original: Any) -> Any:
    """A States.* error name passed on keeps its name (a mocked Throw too: mock_configs)."""

    def error_name(value: str | None) -> ErrorName:
        if value is not None and value.startswith("States."):
            try:
                return StatesErrorName.from_name(value)
            except ValueError:
                return ErrorName(error_name=value)
        return original(value)  # type: ignore[no-any-return]

    return error_name


_BATCH_MODEL: Any = None


def _batch_operation(action: str) -> Any:
    """The botocore operation model for an ASL action ("submitJob") or a boto name
    ("describe_jobs")."""
    global _BATCH_MODEL
    if _BATCH_MODEL is None:
        _BATCH_MODEL = botocore.session.get_session().get_service_model("batch")
    wanted = re.sub(r"[_-]", "", action).lower()
    for name in _BATCH_MODEL.operation_names:
        if name.lower() == wanted:
            return _BATCH_MODEL.operation_model(name)
    raise KeyError(action)


@FIXES.declare(
    "sfn-batch-casing-request",
    Kind.BEHAVIOUR,
    StateTaskServiceBatch,
    "_normalise_parameters",
    why="batch:submitJob passes ASL casing (JobName) to botocore (getmoto/moto#10076)",
)
def _batch_request_casing(original: Any) -> Any:
    def _normalise_parameters(
        self: Any,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        operation = _batch_operation(service_action_name or self.resource.api_action)
        self._to_boto_request(parameters, operation.input_shape)

    return _normalise_parameters


@FIXES.declare(
    "sfn-batch-casing-response",
    Kind.BEHAVIOUR,
    StateTaskServiceBatch,
    "_normalise_response",
    why="Batch results keep botocore casing (jobId) where AWS gives JobId",
)
def _batch_response_casing(original: Any) -> Any:
    def _normalise_response(
        self: Any,
        response: Any,
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        operation = _batch_operation(service_action_name or self.resource.api_action)
        self._from_boto_response(response, operation.output_shape)

    return _normalise_response


# --- speed: the endpoint's own work per execution ---------------------------------------------
_PROGRAMS: dict[str, Any] = {}
_PROGRAMS_LOCK = threading.Lock()
_PARSING: dict[str, threading.Lock] = {}
"""The definitions being parsed, each with the lock its parser holds."""
_PROGRAMS_KEPT = 16


def _fix_heap_keys(component: Any, seen: set[int]) -> None:
    """Give every evaluation component of a program its ``heap_key`` now: moto assigns it
    lazily on first use, a race once several executions share the components (each
    execution keeps its per-component values, e.g. retry attempts, in its own heap under
    that key)."""
    if id(component) in seen:
        return
    seen.add(id(component))
    if isinstance(component, EvalComponent):
        _ = component.heap_key
    if isinstance(component, (list, tuple, set, frozenset)):
        for item in component:
            _fix_heap_keys(item, seen)
    elif isinstance(component, dict):
        for item in component.values():
            _fix_heap_keys(item, seen)
    elif hasattr(component, "__dict__") and type(component).__module__.startswith("moto."):
        for item in vars(component).values():
            _fix_heap_keys(item, seen)


def program_of(definition: str) -> Any:
    """The evaluation program of a definition, parsed and preprocessed once (a syntax error
    raises as before). moto's components keep no per-execution state (that lives in each
    execution's Environment), so executions can share them. One thread parses a definition
    while the others starting with it wait for its program: a backlog starts a hundred
    executions at once, and each parse is ~0.2 s of the endpoint's CPU."""
    with _PROGRAMS_LOCK:
        program = _PROGRAMS.get(definition)
        if program is not None:
            return program
        parsing = _PARSING.setdefault(definition, threading.Lock())
    try:
        with parsing:
            with _PROGRAMS_LOCK:
                program = _PROGRAMS.get(definition)
            if program is None:
                program, _ = AmazonStateLanguageParser.parse(definition)
                _fix_heap_keys(program, set())
                with _PROGRAMS_LOCK:
                    if len(_PROGRAMS) >= _PROGRAMS_KEPT:
                        _PROGRAMS.clear()
                    _PROGRAMS[definition] = program
    finally:
        with _PROGRAMS_LOCK:
            _PARSING.pop(definition, None)
    return program


@FIXES.declare(
    "sfn-parse-once",
    Kind.SPEED,
    ExecutionWorker,
    "_get_evaluation_entrypoint",
    why="every execution parses and preprocesses the whole definition again",
)
def _sfn_parse_once(original: Any) -> Any:
    def _get_evaluation_entrypoint(self: ExecutionWorker) -> Any:
        return program_of(self._evaluation_details.state_machine_details.definition)

    return _get_evaluation_entrypoint


class _InProcess:
    """A botocore ``before-send`` handler: the request is answered by moto's backends in this
    process (moto's own stubber: the same URL routes and response classes the server
    dispatches to), never sent. A body served in chunks (S3 objects,
    chute.local.moto_patches.s3_bodies) is read whole, as the interpreter reads it. A request
    no backend routes fails here rather than leaving."""

    def __init__(self) -> None:
        self._stubber = BotocoreStubber()

    def __call__(self, request: Any, **kwargs: Any) -> Any:
        answer = self._stubber.process_request(request)
        if answer is None:
            raise botocore.exceptions.EndpointConnectionError(endpoint_url=request.url)
        status, headers, body = answer
        if not isinstance(body, (bytes, str)):
            body = b"".join(body)
        return AWSResponse(request.url, status, headers, MockRawResponse(body))


class _InProcessClients:
    """Stands in for the ``boto3`` module inside moto's ``boto_client_for``: ``client`` returns
    one client per (service, region), created with the first caller's settings, whose requests
    are answered in this process (:class:`_InProcess`) instead of going out to the endpoint and
    back through its HTTP server, werkzeug and Flask. boto3 clients are thread-safe."""

    def __init__(self, boto3_module: Any) -> None:
        self._boto3 = boto3_module
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()
        self._answer = _InProcess()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._boto3, name)

    def client(self, *args: Any, **kwargs: Any) -> Any:
        if args:  # not how boto_client_for calls it: don't guess
            return self._boto3.client(*args, **kwargs)
        key = (kwargs.get("service_name"), kwargs.get("region_name"))
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                kwargs.pop("endpoint_url", None)  # AWS's own URL: moto's routes match it
                found = self._boto3.client(**kwargs)
                found.meta.events.register_first("before-send", self._answer)
                self._clients[key] = found
            return found


@FIXES.declare(
    "sfn-clients-in-process",
    Kind.SPEED,
    sfn_boto_client,
    "boto3",
    why="every Task state creates a new boto3 client and calls back into the endpoint over HTTP",
)
def _sfn_clients_in_process(original: Any) -> Any:
    return _InProcessClients(original)


@FIXES.declare(
    "sfn-jsonpath-cache",
    Kind.SPEED,
    sfn_json_path,
    "parse",
    why="every JSONPath evaluation builds a new parser",
)
def cached_jsonpath(original: Any) -> Any:
    """``parse`` of jsonpath_ng, remembered per path (parsed expressions are only read)."""
    return functools.lru_cache(maxsize=1024)(original)


FIXES.declare(
    "sfn-result-path-cache",
    Kind.SPEED,
    result_path,
    "parse",
    why="every ResultPath evaluation builds a new JSONPath parser",
)(cached_jsonpath)


# --- persistence hooks (chute.local.persistence) ----------------------------------------------
@FIXES.declare(
    "persist-execution-start",
    Kind.PERSISTENCE,
    SfnExecution,
    "start",
    why="hook: an execution reports its start",
)
def _execution_started(original: Any) -> Any:
    def start(self: SfnExecution) -> None:
        original(self)
        if HOOKS.execution_started is not None:
            HOOKS.execution_started(self)

    return start


@FIXES.declare(
    "persist-execution-end",
    Kind.PERSISTENCE,
    BaseExecutionWorkerCommunication,
    "terminated",
    why="hook: an execution reports its end (status, output, history complete)",
)
def _execution_ended(original: Any) -> Any:
    def terminated(self: BaseExecutionWorkerCommunication) -> None:
        original(self)
        if HOOKS.execution_ended is not None:
            HOOKS.execution_ended(self.execution)

    return terminated


# --- memory: what grows with executions -------------------------------------------------------
class LiveThreads(list[Any]):
    """Stands in for moto's ``TMP_THREADS``: the list every thread the interpreter starts is
    appended to (the execution's, its program's, one per Task state evaluated, per branch...)
    and never leaves: ~2 KiB per thread, ~7 per execution of the pipeline, ~15 MiB per 1,000.
    Nothing reads it; finished threads are dropped whenever it has doubled since."""

    def __init__(self) -> None:
        super().__init__()
        self._limit = 64

    def append(self, thread: Any) -> None:
        if len(self) >= self._limit:
            self[:] = [t for t in self if t.is_alive()]
            self._limit = max(64, 2 * len(self))
        super().append(thread)


LIVE_THREADS = LiveThreads()

# the modules of moto's interpreter that append to TMP_THREADS (each has its own name for it)
_THREAD_KEEPERS = {
    "program": "asl.component.program.program",
    "state": "asl.component.state.exec.execute_state",
    "worker": "backend.execution_worker",
    "callback": "asl.component.state.exec.state_task.service.state_task_service_callback",
    "map": "asl.component.state.exec.state_map.iteration.inline_iteration_component",
    "parallel": "asl.component.state.exec.state_parallel.branch_worker",
    "test-state": "asl.component.test_state.program.test_state_program",
}


def _live_threads(original: Any) -> Any:
    return LIVE_THREADS


def _declare_in_modules(
    prefix: str, modules: dict[str, str], kind: Kind, attribute: str, why: str, factory: Any
) -> None:
    """One fix per interpreter module (``prefix``-name), each replacing its ``attribute``."""
    for name, module in modules.items():
        FIXES.declare(
            f"{prefix}-{name}",
            kind,
            importlib.import_module(f"moto.stepfunctions.parser.{module}"),
            attribute,
            why=why,
        )(factory)


_declare_in_modules(
    "sfn-threads",
    _THREAD_KEEPERS,
    Kind.MEMORY,
    "TMP_THREADS",
    "the interpreter keeps every thread it ever started (TMP_THREADS)",
    _live_threads,
)


# --- sfn-json-clone-* (speed): state data copied as JSON, not by copy.deepcopy ----------------
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def json_clone(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, strings, numbers, booleans, null) without
    ``copy.deepcopy``'s memo and per-type dispatch (~3x faster); anything else inside is
    deep-copied as before. JSON data has no cycles, and a value that appears twice comes back
    as two equal values: what the interpreter copies is state data, whose identity no one
    reads."""
    kind = type(value)
    if kind is dict:
        return {key: json_clone(item) for key, item in value.items()}
    if kind is list:
        return [json_clone(item) for item in value]
    if kind in _JSON_SCALARS:
        return value
    return copy.deepcopy(value)


class _JsonCopy:
    """What the interpreter's modules below see as their ``copy`` module."""

    deepcopy = staticmethod(json_clone)
    copy = staticmethod(copy.copy)


_STATE_DATA_COPIERS = {
    "states": "asl.eval.states",
    "string": "asl.component.common.string.string_expression",
    "result-path": "asl.component.common.path.result_path",
    "execute-state": "asl.component.state.exec.execute_state",
    "environment": "asl.eval.environment",
    "events": "asl.eval.event.event_manager",
    "task-parameters": "asl.component.state.exec.state_task.service.state_task_service",
}
"""The interpreter's modules that copy state data (each input, result, parameter set, frame
stack and history event): ~11,600 values deep-copied per file of the pipeline, ~5 ms of the
endpoint's CPU, ~2 ms as JSON (docs/decisions.md, 2026-12-07)."""


def _json_copy(original: Any) -> Any:
    return _JsonCopy


_declare_in_modules(
    "sfn-json-clone",
    _STATE_DATA_COPIERS,
    Kind.SPEED,
    "copy",
    "the interpreter copies JSON state data with copy.deepcopy (memo, dispatch per value)",
    _json_copy,
)
