"""Every change chute makes to moto's behaviour, in one place.

moto (pinned exactly in pyproject.toml) is the embedded engine. It has no official hooks to run
our own code for Lambda invocations or Batch jobs, and a few behaviours differ from AWS in ways
the pipeline depends on. Each entry below is a :class:`Fix` with

- ``apply()`` / ``revert()`` (the original is kept, so tests can compare), and
- ``still_needed()``: a probe run against the *original* code. Canary tests assert it is True;
  when one fails after a moto upgrade, upstream fixed the problem and the fix should be deleted.

Hooks (not bugs, but the same mechanism):
  lambda-executor   LambdaFunction._invoke_lambda -> our warm worker processes
  batch-executor    BatchSimpleBackend._mark_job_as_finished -> our local job runner
  retry-time-scale  Retry backoff waits scaled by a factor (tests never sleep real intervals)
  request-filter    every HTTP request to the endpoint passes chute.local.faults first (injected
                    S3 errors, signals to workers), before moto's dispatcher
Fixes:
  batch-exit-code           DescribeJobs lacks container.exitCode
  s3-multipart-put-event    CompleteMultipartUpload also emits ObjectCreated:Put
  s3-event-fields           events lack sequencer/versionId and encode '/' in keys as %2F
  sfn-unnamed-execution     StartExecution without a name yields the name "None"
  sfn-fail-states-error     a Fail state whose ErrorPath yields a States.* name (e.g. a Batch
                            States.TaskFailed passed on) ends in States.Runtime instead
  sfn-batch-casing-request  batch:submitJob(.sync) passes ASL casing (JobName) to botocore: the
                            request fails with States.Runtime 'JobName' (getmoto/moto#10076)
  sfn-batch-casing-response results keep botocore casing (jobId, container.exitCode) where AWS
                            gives JobId, Container.ExitCode; .sync then fails on 'JobId'
Memory (moto holds whole object bodies in memory; these keep the server's memory bounded):
  s3-key-file-body          FakeKey copies every body through memory; it can now adopt a file
  s3-multipart-complete     CompleteMultipartUpload joins all parts in memory (~3x the object)
  s3-get-object-streaming   GetObject reads the whole body into memory before sending it
  s3-upload-part-copy-range UploadPartCopy reads the whole source object for every part
  s3-copy-object-streaming  CopyObject reads the whole source object into memory
Speed (the embedded runtime's own CPU per file; bench/throughput.py, docs/decisions.md):
  sfn-parse-once            every execution lexes, parses and preprocesses the whole definition
                            (ANTLR; ~70 % of the endpoint's CPU per small file); the program is
                            now built once per definition and shared (its components are
                            stateless: each execution's values live in its own Environment)
  sfn-client-reuse          every Task state creates a new boto3 client to call back into the
                            endpoint; one client per (service, region, endpoint) is reused
  sfn-jsonpath-cache        every path evaluation builds a new JSONPath parser (PLY tables)
  server-dispatch-cache     every request lists moto's package folder and matches ~150 URL
                            patterns under one global lock to find its service
Persistence hooks (chute/local/persistence.py keeps the embedded runtime's data across restarts):
  persist-s3-*              every S3 request that changes an object reports it before answering
  persist-execution-*       an execution reports its start and its end
  s3-complete-if-match      CompleteMultipartUpload ignores If-Match (AWS: 412 when the current
                            object has another ETag, 404 when there is none), which chute's
                            newest-version-wins publication relies on
Step Functions Local's MockConfigFile (docs/testing-workflows.md):
  sfn-mock-config           the interpreter has the mock machinery but never loads a file, and
                            StartExecution refuses `<stateMachineArn>#<TestCase>`; now the file
                            in HOOKS.mock_config_file (LocalSettings.mock_config, SFN_MOCK_CONFIG)
                            is read at every such StartExecution
  sfn-mock-config-worker    an execution never hands its mock test case to its worker
  sfn-mock-states-error     a mocked Throw of a States.* error (a .sync job's States.TaskFailed,
                            States.Timeout) ends in States.Runtime, as sfn-fail-states-error
Redrive (missing in moto; AWS semantics, docs/operating.md):
  sfn-redrive-execution     RedriveExecution: resume a FAILED/TIMED_OUT/ABORTED execution at the
                            state it failed in, same ARN, within 14 days of its end
  sfn-redrive-describe      DescribeExecution: redriveCount, redriveDate, redriveStatus,
                            redriveStatusReason
  sfn-redrive-list          ListExecutions: redriveCount, redriveDate
"""

from __future__ import annotations

import binascii
import copy
import datetime as dt
import functools
import hashlib
import itertools
import json
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote_plus

import botocore.config
import botocore.session
from moto.awslambda.models import LambdaFunction
from moto.batch.models import Job
from moto.batch_simple.models import BatchSimpleBackend
from moto.core.compat import HAS_CRT
from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3 import models as s3_models
from moto.s3 import notifications as s3_notifications
from moto.s3.exceptions import (
    EntityTooSmall,
    InvalidPart,
    MalformedXML,
    MissingKey,
    PreconditionFailed,
)
from moto.s3.models import FakeKey, FakeMultipart, S3Backend
from moto.s3.responses import S3Response
from moto.stepfunctions.exceptions import InvalidName
from moto.stepfunctions.parser.api import ExecutionStatus, HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.state.exec.state_task import mock_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch import (  # noqa: E501
    StateTaskServiceBatch,
)
from moto.stepfunctions.parser.asl.component.state.fail import state_fail
from moto.stepfunctions.parser.asl.eval.evaluation_details import (
    EvaluationDetails,
    StateMachineDetails,
)
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import boto_client as sfn_boto_client
from moto.stepfunctions.parser.asl.utils import json_path as sfn_json_path
from moto.stepfunctions.parser.backend.execution import (
    BaseExecutionWorkerCommunication,
)
from moto.stepfunctions.parser.backend.execution import Execution as SfnExecution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.mocking.mock_config import (
    MockedResponse,
    MockedResponseReturn,
    MockedResponseThrow,
    MockTestCase,
    StateMockedResponses,
)
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from chute.local.persistence import INTERRUPTED_ERROR, RestoredExecution
from chute.ops.mock_cases import MockConfigError, load_mock_config

LambdaExecutor = Callable[[LambdaFunction, Any], tuple[str, bool, str]]
BatchExecutor = Callable[[Job], None]
RequestFilter = Callable[[dict[str, Any]], tuple[str, list[tuple[str, str]], bytes] | None]


MISSING: Any = object()
"""The original of a fix that adds what moto lacks (an API operation): reverting removes it."""


@dataclass
class Fix:
    name: str
    why: str
    owner: Any
    attribute: str
    replacement_factory: Callable[[Any], Any]
    original: Any = field(default=None, init=False)
    applied: bool = field(default=False, init=False)

    def apply(self) -> None:
        if self.applied:
            return
        self.original = getattr(self.owner, self.attribute, MISSING)
        setattr(self.owner, self.attribute, self.replacement_factory(self.original))
        self.applied = True

    def revert(self) -> None:
        if self.applied:
            if self.original is MISSING:
                delattr(self.owner, self.attribute)
            else:
                setattr(self.owner, self.attribute, self.original)
            self.applied = False

    def current_original(self) -> Any:
        return self.original if self.applied else getattr(self.owner, self.attribute, MISSING)


# --- hooks ------------------------------------------------------------------------------------
class _Hooks:
    lambda_executor: LambdaExecutor | None = None
    batch_executor: BatchExecutor | None = None
    time_scale: float = 1.0
    object_written: Callable[[S3Backend, str, str], None] | None = None
    """(backend, bucket, key) after a request changed that key, before the response is sent."""
    bucket_written: Callable[[S3Backend, str], None] | None = None
    """(backend, bucket) after a request that may have changed any key of the bucket."""
    execution_started: Callable[[Any], None] | None = None
    execution_ended: Callable[[Any], None] | None = None
    request_filter: RequestFilter | None = None
    mock_config_file: Path | None = None
    """Step Functions Local's MockConfigFile for StartExecution on ``<arn>#<TestCase>``."""


HOOKS = _Hooks()


def _lambda_executor(original: Any) -> Any:
    def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        if HOOKS.lambda_executor is None:
            return original(self, event)  # type: ignore[no-any-return]
        return HOOKS.lambda_executor(self, event)

    return _invoke_lambda


def _batch_executor(original: Any) -> Any:
    def _mark_job_as_finished(self: Any, include_start_attempt: bool, job: Job) -> None:
        if HOOKS.batch_executor is None:
            original(self, include_start_attempt, job)
            return
        self.backend._jobs[job.job_id] = job
        HOOKS.batch_executor(job)

    return _mark_job_as_finished


def _request_filter(original: Any) -> Any:
    def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        answer = HOOKS.request_filter(environ) if HOOKS.request_filter else None
        if answer is None:
            return original(self, environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    return __call__


class _ScaledTime:
    """Stands in for the ``time`` module inside moto's retrier: only ``sleep`` is scaled."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(max(0.0, seconds * HOOKS.time_scale))


def _retry_time(original: Any) -> Any:
    return _ScaledTime()


# --- fixes ------------------------------------------------------------------------------------
def _batch_exit_code(original: Any) -> Any:
    def _container_details(self: Job) -> dict[str, Any]:
        details: dict[str, Any] = original(self)
        if self.exit_code is not None:
            details["exitCode"] = self.exit_code
        return details

    return _container_details


def _s3_put_without_duplicate_event(original: Any) -> Any:
    def put_object(self: S3Backend, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("multipart") is not None:
            # complete_multipart_upload sends its own CompleteMultipartUpload event.
            kwargs["disable_notification"] = True
        return original(self, *args, **kwargs)

    return put_object


_SEQUENCE = itertools.count(1)
_SEQUENCE_LOCK = threading.Lock()


def _s3_event_fields(original: Any) -> Any:
    def _get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> Any:
        event = original(event_name, bucket, key, notification_id)
        with _SEQUENCE_LOCK:
            sequencer = f"{time.time_ns():016X}{next(_SEQUENCE):08X}"
        for record in event["Records"]:
            obj = record["s3"]["object"]
            obj["key"] = quote_plus(key.name, safe="/")
            obj["sequencer"] = sequencer
            version = getattr(key, "version_id", None)
            if version and version != "null":
                obj["versionId"] = version
        return event

    return _get_s3_event


def _sfn_named_execution(original: Any) -> Any:
    def start_execution(
        self: Any, state_machine_arn: str, name: str | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    return start_execution


def _fail_error_name(original: Any) -> Any:
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


# --- bounded memory: object bodies stay on disk ---------------------------------------------
SMALL_BODY_BYTES = 8 * 1024 * 1024
"""Bodies up to this size are passed as bytes (moto's own buffer keeps them in memory)."""
CHUNK_BYTES = 8 * 1024 * 1024


class FileBody:
    """An object body already in a file: a FakeKey adopts the file as its buffer (with the
    ``s3-key-file-body`` fix) instead of copying the bytes through memory."""

    def __init__(self, file: IO[bytes], size: int) -> None:
        self.file = file
        self.size = size

    def __len__(self) -> int:
        return self.size


def key_chunks(key: FakeKey, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
    """The bytes ``[start, stop)`` of a key's body, in chunks of at most CHUNK_BYTES, without
    reading the whole body (and independent of the buffer's position, which others share)."""
    end = key.size if stop is None else min(stop, key.size)
    if start >= end:
        return
    buffer = key._value_buffer
    with key.lock:
        if getattr(buffer, "_rolled", True) is False:  # a SpooledTemporaryFile still in memory
            buffer.seek(start)
            data = buffer.read(end - start)
            fd = -1
        else:
            buffer.flush()
            fd = os.dup(buffer.fileno())
    if fd < 0:
        for offset in range(0, len(data), CHUNK_BYTES):
            yield data[offset : offset + CHUNK_BYTES]
        return
    try:
        position = start
        while position < end:
            chunk = os.pread(fd, min(CHUNK_BYTES, end - position), position)
            if not chunk:
                raise OSError(f"object body ended at byte {position} of {end}")
            position += len(chunk)
            yield chunk
    finally:
        os.close(fd)


def spool(chunks: Iterator[bytes], size: int) -> bytes | FileBody:
    """``size`` bytes from ``chunks``: as bytes when small, else in a temporary file."""
    if size <= SMALL_BODY_BYTES:
        return b"".join(chunks)
    file = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the FakeKey that adopts it
    for chunk in chunks:
        file.write(chunk)
    file.flush()
    return FileBody(file, size)


def _key_file_body(original: property) -> property:
    def set_value(self: FakeKey, new_value: Any) -> None:
        if isinstance(new_value, FileBody):
            previous = self._value_buffer
            self._value_buffer = new_value.file  # type: ignore[assignment]
            self.contentsize = new_value.size
            previous.close()
            return
        assert original.fset is not None
        original.fset(self, new_value)

    return property(original.fget, set_value)


class _StreamingChecksum:
    """moto's multipart checksum (same algorithms, defaults and fallbacks), computed while
    streaming instead of over bytes held in memory."""

    def __init__(self, algorithm: str | None, checksum_type: str | None) -> None:
        self.algorithm = algorithm or "CRC64NVME"
        self.type = checksum_type or (
            "FULL_OBJECT" if self.algorithm == "CRC64NVME" else "COMPOSITE"
        )
        self.parts = 0
        self._composite = bytearray()
        self._whole = self._new()
        self._part = self._new()

    def _new(self) -> list[Any]:
        name = self.algorithm
        if name == "SHA1":
            return ["hash", hashlib.sha1(usedforsecurity=False)]
        if name in ("CRC32", "CRC32C", "CRC64NVME"):
            return [name, 0]
        return ["hash", hashlib.sha256(usedforsecurity=False)]

    @staticmethod
    def _update(state: list[Any], data: bytes) -> None:
        kind = state[0]
        if kind == "hash":
            state[1].update(data)
        elif kind == "CRC64NVME" and HAS_CRT:
            from awscrt import checksums  # type: ignore[import-not-found,unused-ignore]

            state[1] = checksums.crc64nvme(data, state[1])
        elif kind == "CRC32C":
            try:
                import crc32c  # type: ignore[import-not-found]

                state[1] = crc32c.crc32c(data, state[1])
            except ImportError:
                state[1] = binascii.crc32(data, state[1])
        else:  # CRC32, and moto's CRC32 fallbacks
            state[1] = binascii.crc32(data, state[1])

    @staticmethod
    def _digest(state: list[Any]) -> bytes:
        kind = state[0]
        if kind == "hash":
            return bytes(state[1].digest())
        if kind == "CRC64NVME" and HAS_CRT:
            return int(state[1]).to_bytes(8, "big")
        return int(state[1]).to_bytes(4, "big")

    def update(self, data: bytes) -> None:
        if self.type == "COMPOSITE":
            self._update(self._part, data)
        else:
            self._update(self._whole, data)

    def end_part(self) -> None:
        if self.type == "COMPOSITE":
            self._composite.extend(self._digest(self._part))
            self._part = self._new()
        self.parts += 1

    def build(self) -> tuple[str, str, int]:
        import base64

        if self.type == "COMPOSITE":
            whole = self._new()
            self._update(whole, bytes(self._composite))
            return (self.type, base64.b64encode(self._digest(whole)).decode(), self.parts)
        return (self.type, base64.b64encode(self._digest(self._whole)).decode(), 1)


def _multipart_complete_streaming(original: Any) -> Any:
    def complete(
        self: FakeMultipart, body: Iterator[tuple[int, str]]
    ) -> tuple[bytes | FileBody, str, tuple[str, str, int] | None]:
        checksum = _StreamingChecksum(
            self.metadata.get("x-amz-checksum-algorithm"),
            self.metadata.get("x-amz-checksum-type"),
        )
        parts: list[FakeKey] = []
        md5s = bytearray()
        for number, etag in body:
            part = self.parts.get(number)
            if part is None or part.etag.replace('"', "") != etag.replace('"', ""):
                raise InvalidPart()
            if parts and parts[-1].contentsize < s3_models.S3_UPLOAD_PART_MIN_SIZE:  # type: ignore[attr-defined]
                raise EntityTooSmall()
            md5s.extend(binascii.unhexlify(part.etag.replace('"', "")))
            parts.append(part)
        if not parts:
            raise MalformedXML

        def chunks() -> Iterator[bytes]:
            for part in parts:
                for chunk in key_chunks(part):
                    checksum.update(chunk)
                    yield chunk
                checksum.end_part()

        value = spool(chunks(), sum(p.contentsize for p in parts))
        full_etag = hashlib.md5(bytes(md5s), usedforsecurity=False).hexdigest()
        return value, f"{full_etag}-{len(parts)}", checksum.build()

    return complete


class _BodyStream:
    """A GetObject body sent in chunks from the key's buffer; supports what moto's response
    code does with a body (len, truth, slicing for Range requests)."""

    def __init__(self, key: FakeKey, start: int = 0, stop: int | None = None) -> None:
        self._key = key
        self._start = start
        self._stop = key.size if stop is None else stop

    def __len__(self) -> int:
        return max(0, self._stop - self._start)

    def __getitem__(self, index: slice) -> _BodyStream:
        start, stop, _ = index.indices(len(self))
        return _BodyStream(self._key, self._start + start, self._start + max(start, stop))

    def __iter__(self) -> Iterator[bytes]:
        return key_chunks(self._key, self._start, self._stop)


class _StreamingKey:
    """The key GetObject sees: the real one, except that its value streams."""

    def __init__(self, key: FakeKey) -> None:
        self._key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._key, name)

    @property
    def value(self) -> _BodyStream:
        return _BodyStream(self._key)


def _get_object_streaming(original: Any) -> Any:
    def get_object(self: S3Response) -> Any:
        find_key = self._get_key

        def streaming_key(*args: Any, **kwargs: Any) -> tuple[Any, bool]:
            key, not_modified = find_key(*args, **kwargs)
            return _StreamingKey(key), not_modified

        self._get_key = streaming_key  # type: ignore[method-assign]
        try:
            return original(self)
        finally:
            del self._get_key

    return get_object


def _upload_part_copy_range(original: Any) -> Any:
    def upload_part_copy(
        self: S3Backend,
        dest_bucket_name: str,
        multipart_id: str,
        part_id: int,
        src_bucket_name: str,
        src_key_name: str,
        src_version_id: str | None,
        start_byte: int,
        end_byte: int,
    ) -> FakeKey:
        multipart = self.get_bucket(dest_bucket_name).multiparts[multipart_id]
        source: FakeKey = self.get_object(  # type: ignore[assignment]
            src_bucket_name, src_key_name, version_id=src_version_id
        )
        start, stop = 0, source.size
        if start_byte is not None:
            start, stop = start_byte, min(end_byte + 1, source.size)
        size = max(0, stop - start)
        return multipart.set_part(part_id, spool(key_chunks(source, start, stop), size))  # type: ignore[arg-type]

    return upload_part_copy


class _CopySource:
    """The source key CopyObject sees: the real one, except that its value is spooled."""

    def __init__(self, key: FakeKey) -> None:
        self._key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._key, name)

    @property
    def value(self) -> bytes | FileBody:
        return spool(key_chunks(self._key), self._key.size)


def _copy_object_streaming(original: Any) -> Any:
    def copy_object(self: S3Backend, src_key: FakeKey, *args: Any, **kwargs: Any) -> Any:
        return original(self, _CopySource(src_key), *args, **kwargs)

    return copy_object


# --- speed: the endpoint's own work per execution and per request -----------------------------
_PROGRAMS: dict[str, Any] = {}
_PROGRAMS_LOCK = threading.Lock()
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
    execution's Environment), so executions can share them."""
    with _PROGRAMS_LOCK:
        program = _PROGRAMS.get(definition)
    if program is None:
        program, _ = AmazonStateLanguageParser.parse(definition)
        _fix_heap_keys(program, set())
        with _PROGRAMS_LOCK:
            if len(_PROGRAMS) >= _PROGRAMS_KEPT:
                _PROGRAMS.clear()
            program = _PROGRAMS.setdefault(definition, program)
    return program


def _sfn_parse_once(original: Any) -> Any:
    def _get_evaluation_entrypoint(self: ExecutionWorker) -> Any:
        return program_of(self._evaluation_details.state_machine_details.definition)

    return _get_evaluation_entrypoint


class _ReusedClients:
    """Stands in for the ``boto3`` module inside moto's ``boto_client_for``: ``client`` returns
    one client per (service, region, endpoint), created with the first caller's settings.
    boto3 clients are thread-safe; their connection pool is sized for many executions."""

    def __init__(self, boto3_module: Any) -> None:
        self._boto3 = boto3_module
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._boto3, name)

    def client(self, *args: Any, **kwargs: Any) -> Any:
        if args:  # not how boto_client_for calls it: don't guess
            return self._boto3.client(*args, **kwargs)
        key = (kwargs.get("service_name"), kwargs.get("region_name"), kwargs.get("endpoint_url"))
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                config = kwargs.get("config")
                pool = botocore.config.Config(max_pool_connections=64)
                kwargs["config"] = config.merge(pool) if config is not None else pool
                found = self._clients[key] = self._boto3.client(**kwargs)
            return found


def _sfn_client_reuse(original: Any) -> Any:
    return _ReusedClients(original)


def _cached_jsonpath(original: Any) -> Any:
    """``parse`` of jsonpath_ng, remembered per path (parsed expressions are only read)."""
    return functools.lru_cache(maxsize=1024)(original)


def _dispatch_cache(original: Any) -> Any:
    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        cache: dict[str | None, Any] = self.__dict__.setdefault("_chute_backend_of_host", {})
        if host in cache:
            return cache[host]
        backend = original(self, host)
        cache[host] = backend
        return backend

    return get_backend_for_host


# --- persistence hooks ------------------------------------------------------------------------
def _object_written(original: Any) -> Any:
    def handler(self: S3Response, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if HOOKS.object_written is not None:
            HOOKS.object_written(self.backend, self.bucket_name, self.parse_key_name())
        return result

    return handler


def _key_post_written(original: Any) -> Any:
    def _key_response_post(
        self: S3Response,
        request: Any,
        body: bytes,
        bucket_name: str,
        query: dict[str, Any],
        key_name: str,
    ) -> Any:
        result = original(self, request, body, bucket_name, query, key_name)
        if HOOKS.object_written is not None:
            HOOKS.object_written(self.backend, bucket_name, key_name)
        return result

    return _key_response_post


def _bucket_post_written(original: Any) -> Any:
    def _bucket_response_post(self: S3Response, request: Any, bucket_name: str) -> Any:
        result = original(self, request, bucket_name)
        if HOOKS.bucket_written is not None:
            HOOKS.bucket_written(self.backend, bucket_name)
        return result

    return _bucket_response_post


def _execution_started(original: Any) -> Any:
    def start(self: SfnExecution) -> None:
        original(self)
        if HOOKS.execution_started is not None:
            HOOKS.execution_started(self)

    return start


def _execution_ended(original: Any) -> Any:
    def terminated(self: BaseExecutionWorkerCommunication) -> None:
        original(self)
        if HOOKS.execution_ended is not None:
            HOOKS.execution_ended(self.execution)

    return terminated


def _s3_complete_if_match(original: Any) -> Any:
    def _key_response_post(
        self: Any, request: Any, body: bytes, bucket_name: str, query: Any, key_name: str
    ) -> Any:
        if_match = self.headers.get("If-Match")
        if query.get("uploadId") and if_match:
            existing = self.backend.get_object(bucket_name, key_name)
            multipart_id = query["uploadId"][0]
            repeated = existing is not None and getattr(existing.multipart, "id", None) == (
                multipart_id
            )
            if not repeated:
                if existing is None:
                    raise MissingKey(key=key_name)
                if if_match.replace('"', "") != existing.etag.replace('"', ""):
                    raise PreconditionFailed("If-Match")
        return original(self, request, body, bucket_name, query, key_name)

    return _key_response_post


# --- Step Functions Local's MockConfigFile ----------------------------------------------------
_PENDING_MOCK = threading.local()


def _mock_test_case(machine: str, case: str) -> MockTestCase:
    """The test case ``case`` of ``machine`` from HOOKS.mock_config_file, in moto's classes.
    Read at every start, so an edited file applies to the next execution."""
    path = HOOKS.mock_config_file
    if path is None:
        raise InvalidName(
            f"Invalid mock test case name '{case}' for state machine '{machine}': no mock"
            " configuration is loaded (start the runtime with a MockConfigFile:"
            " LocalSettings.mock_config, `chute up --mock-config` or SFN_MOCK_CONFIG)"
        )
    try:
        config = load_mock_config(path)
    except MockConfigError as exc:
        raise InvalidName(str(exc)) from exc
    states = config.test_cases.get(machine, {}).get(case)
    if states is None:
        raise InvalidName(
            f"Invalid mock test case name '{case}' for state machine '{machine}': not in {path}"
        )
    mocked = []
    for state, name in states.items():
        answers: list[MockedResponse] = []
        for first, last, answer in config.responses[name]:
            if answer.kind == "Return":
                answers.append(MockedResponseReturn(first, last, copy.deepcopy(answer.payload)))
            else:
                answers.append(MockedResponseThrow(first, last, answer.error, answer.cause))
        mocked.append(StateMockedResponses(state, name, answers))
    return MockTestCase(machine, case, mocked)


def _sfn_mock_config(original: Any) -> Any:
    def start_execution(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        base, marked, case = state_machine_arn.partition("#")
        if not marked:
            return original(self, state_machine_arn, *args, **kwargs)
        machine = self.describe_state_machine(base)
        _PENDING_MOCK.case = _mock_test_case(machine.name, case)
        try:
            return original(self, base, *args, **kwargs)
        finally:
            _PENDING_MOCK.case = None

    return start_execution


def _sfn_mock_worker(original: Any) -> Any:
    def _get_start_execution_worker(self: SfnExecution) -> ExecutionWorker:
        worker: ExecutionWorker = original(self)
        case = getattr(_PENDING_MOCK, "case", None)
        if case is not None:
            worker._mock_test_case = case  # type: ignore[misc]
        return worker

    return _get_start_execution_worker


# --- RedriveExecution -------------------------------------------------------------------------
REDRIVE_WINDOW = dt.timedelta(days=14)
"""How long after its end an execution can be redriven (AWS: 14 days)."""
_REDRIVABLE = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


class ExecutionNotRedrivable(AWSError):
    TYPE = "ExecutionNotRedrivable"
    STATUS = 400


def redrive_count(execution: Any) -> int:
    return int(getattr(execution, "chute_redrive_count", 0))


def not_redrivable_reason(execution: Any, now: dt.datetime | None = None) -> str | None:
    """Why RedriveExecution would refuse ``execution`` (AWS's redriveStatusReason), or None."""
    status = str(getattr(execution.status, "value", execution.status))
    if status == "RUNNING":
        return "Execution is RUNNING and cannot be redriven."
    if status == "SUCCEEDED":
        return "Execution is SUCCEEDED and cannot be redriven."
    if status not in _REDRIVABLE:
        return f"Execution is {status} and cannot be redriven."
    if isinstance(execution, RestoredExecution):
        # chute.local.persistence's record of an earlier run of the embedded runtime (local only)
        if execution.error == INTERRUPTED_ERROR:
            return (
                "Execution was interrupted by a stop of the embedded runtime;"
                " its file was announced again."
            )
    elif not isinstance(execution, SfnExecution) or execution.exec_worker is None:
        return "Execution has not started."
    elif "EXPRESS" in str(execution.sm_type):
        return "Execution of an EXPRESS state machine cannot be redriven."
    stopped = execution.stop_date
    if stopped is not None and (now or dt.datetime.now(dt.UTC)) - stopped > REDRIVE_WINDOW:
        return "Execution redrivable period exceeded."
    return None


def _resume_point(
    events: list[Any], definition: dict[str, Any], execution_input: Any
) -> tuple[str, Any]:
    """The state the execution failed in (entered last and never exited) and its input."""
    top = set(definition.get("States", {}))
    failed: tuple[str, Any] | None = None
    for event in events:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            details = event.get("stateEnteredEventDetails") or {}
            if details.get("name") in top:
                failed = (details["name"], json.loads(details.get("input") or "{}"))
        elif (
            kind.endswith("StateExited")
            and failed is not None
            and (event.get("stateExitedEventDetails") or {}).get("name") == failed[0]
        ):
            failed = None
    return failed or (str(definition["StartAt"]), execution_input)


class _RedriveWorker(ExecutionWorker):
    """Runs an execution again from the state it failed in, after its kept history."""

    def __init__(
        self, *args: Any, history: list[Any], redrives: int, state_input: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._history = history
        self._redrives = redrives
        self._state_input = state_input

    def _execution_logic(self) -> None:
        program = self._get_evaluation_entrypoint()
        env = self.env = self._get_evaluation_environment()
        manager = env.event_manager
        last_id = max((int(e["id"]) for e in self._history), default=0)
        manager._history_event_list.extend(self._history)
        manager._event_id_gen._next_id = last_id + 1
        env.event_history_context.source_event_id = last_id
        env.event_history_context.last_published_event_id = last_id
        execution_data: dict[str, Any] = env.states.context_object.context_object_data["Execution"]  # type: ignore[assignment]
        execution_data["RedriveCount"] = self._redrives
        env.states.reset(self._state_input)
        details: Any = {"executionRedrivenEventDetails": {"redriveCount": self._redrives}}
        manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            event_details=details,
        )
        program.eval(env)
        self._execution_communication.terminated()


def _revive(backend: StepFunctionsParserBackend, restored: RestoredExecution) -> Any:
    """A live execution in place of the record of an earlier run (chute.local.persistence), with the
    state machine's current definition (the record has none: the same unless the workflow file
    changed between the runs)."""
    machine: Any = backend.describe_state_machine(restored.state_machine_arn)
    clone = copy.deepcopy(
        machine, {id(machine.executions): [], id(machine.backend): machine.backend}
    )
    live: Any = SfnExecution(
        name=restored.name,
        sm_type=clone.sm_type,
        role_arn=clone.roleArn,
        exec_arn=restored.execution_arn,
        account_id=backend.account_id,
        region_name=backend.region_name,
        state_machine=clone,
        start_date=restored.start_date,
        cloud_watch_logging_session=None,
        activity_store={},
        input_data=restored.execution_input,
    )
    live.exec_status = ExecutionStatus(restored.status)
    live.stop_date, live.error, live.cause = restored.stop_date, restored.error, restored.cause
    live.chute_redrive_count = redrive_count(restored)
    machine.executions[machine.executions.index(restored)] = live
    return live


def redrive(backend: StepFunctionsParserBackend, execution_arn: str) -> Any:
    """RedriveExecution with AWS's semantics: the same execution (ARN, input, start date,
    definition) continues at the state it failed in, with that state's input; the states
    before it are not run again; its history grows by ExecutionRedriven and what follows.
    Map and Parallel states are run again whole (AWS redrives only their failed iterations).
    An execution recorded by an earlier run of the runtime (chute.local.persistence) is revived from
    its record first."""
    execution: Any = backend.describe_execution(execution_arn)
    reason = not_redrivable_reason(execution)
    if reason is not None:
        raise ExecutionNotRedrivable(f"Execution {execution_arn} cannot be redriven: {reason}")
    if isinstance(execution, RestoredExecution):
        history, mock_test_case = list(execution.history), None
        execution = _revive(backend, execution)
    else:
        env = execution.exec_worker.env
        history = env.event_manager.get_event_history() if env is not None else []
        mock_test_case = execution.exec_worker._mock_test_case
    definition = json.loads(execution.state_machine.definition)
    state, state_input = _resume_point(list(history), definition, execution.input_data)
    redrives = redrive_count(execution) + 1
    details = execution.get_start_state_machine_details()
    worker = _RedriveWorker(
        evaluation_details=EvaluationDetails(
            aws_execution_details=execution._get_start_aws_execution_details(),
            execution_details=execution.get_start_execution_details(),
            state_machine_details=StateMachineDetails(
                arn=details.arn,
                name=details.name,
                typ=details.typ,
                definition=json.dumps({**definition, "StartAt": state}),
            ),
        ),
        exec_comm=execution._get_start_execution_worker_comm(),
        cloud_watch_logging_session=execution._cloud_watch_logging_session,
        activity_store=execution._activity_store,
        mock_test_case=mock_test_case,
        history=list(history),
        redrives=redrives,
        state_input=state_input,
    )
    execution.chute_redrive_count = redrives
    execution.chute_redrive_date = dt.datetime.now(dt.UTC)
    execution.exec_status = ExecutionStatus.RUNNING
    execution.stop_date = None
    execution.error = execution.cause = None
    execution.output = None
    execution.exec_worker = worker
    if HOOKS.execution_started is not None:
        HOOKS.execution_started(execution)
    worker.start()  # type: ignore[no-untyped-call]
    return execution


def _redrive_execution(original: Any) -> Any:
    def redrive_execution(self: StepFunctionResponse) -> ActionResult:
        execution = redrive(
            self.stepfunction_backend,  # type: ignore[arg-type]
            self._get_param("executionArn"),
        )
        return ActionResult({"redriveDate": execution.chute_redrive_date})

    return redrive_execution


def _redrive_fields(execution: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"redriveCount": redrive_count(execution)}
    if getattr(execution, "chute_redrive_date", None) is not None:
        fields["redriveDate"] = execution.chute_redrive_date
    reason = not_redrivable_reason(execution)
    fields["redriveStatus"] = "NOT_REDRIVABLE" if reason else "REDRIVABLE"
    if reason:
        fields["redriveStatusReason"] = reason
    return fields


def _redrive_describe(original: Any) -> Any:
    def describe_execution(self: StepFunctionResponse) -> Any:
        result = original(self)
        if isinstance(result, ActionResult) and isinstance(result.result, dict):
            execution = self.stepfunction_backend.describe_execution(
                self._get_param("executionArn")
            )
            result.result.update(_redrive_fields(execution))
        return result

    return describe_execution


def _redrive_list(original: Any) -> Any:
    def list_executions(self: StepFunctionResponse) -> Any:
        result = original(self)
        if isinstance(result, ActionResult) and isinstance(result.result, dict):
            machine: Any = self.stepfunction_backend.describe_state_machine(
                self._get_param("stateMachineArn")
            )
            by_arn: dict[str, Any] = {e.execution_arn: e for e in machine.executions}
            for item in result.result.get("executions", []):
                execution = by_arn.get(item["executionArn"])
                redriven = getattr(execution, "chute_redrive_date", None)
                item["redriveCount"] = redrive_count(execution)
                if redriven is not None:
                    item["redriveDate"] = redriven
        return result

    return list_executions


FIXES: dict[str, Fix] = {
    fix.name: fix
    for fix in (
        Fix(
            "lambda-executor",
            "moto runs Lambda code only in Docker; run our handlers in local worker processes",
            LambdaFunction,
            "_invoke_lambda",
            _lambda_executor,
        ),
        Fix(
            "batch-executor",
            "moto's docker-less Batch marks jobs SUCCEEDED without running anything",
            BatchSimpleBackend,
            "_mark_job_as_finished",
            _batch_executor,
        ),
        Fix(
            "retry-time-scale",
            "Retry waits are real time; scale them so tests and demos don't sleep",
            retrier_decl,
            "time",
            _retry_time,
        ),
        Fix(
            "request-filter",
            "moto's server has no middleware hook; injected faults answer before it",
            DomainDispatcherApplication,
            "__call__",
            _request_filter,
        ),
        Fix(
            "batch-exit-code",
            "DescribeJobs lacks container.exitCode, which the workflow classifies failures by",
            Job,
            "_container_details",
            _batch_exit_code,
        ),
        Fix(
            "s3-multipart-put-event",
            "CompleteMultipartUpload also emits a spurious ObjectCreated:Put",
            S3Backend,
            "put_object",
            _s3_put_without_duplicate_event,
        ),
        Fix(
            "s3-event-fields",
            "S3 events lack sequencer/versionId and encode '/' as %2F",
            s3_notifications,
            "_get_s3_event",
            _s3_event_fields,
        ),
        Fix(
            "sfn-unnamed-execution",
            "StartExecution without a name yields an execution named 'None'",
            StepFunctionsParserBackend,
            "start_execution",
            _sfn_named_execution,
        ),
        Fix(
            "sfn-fail-states-error",
            "Fail with an ErrorPath yielding States.* ends in States.Runtime",
            state_fail,
            "CustomErrorName",
            _fail_error_name,
        ),
        Fix(
            "sfn-batch-casing-request",
            "batch:submitJob passes ASL casing (JobName) to botocore (getmoto/moto#10076)",
            StateTaskServiceBatch,
            "_normalise_parameters",
            _batch_request_casing,
        ),
        Fix(
            "sfn-batch-casing-response",
            "Batch results keep botocore casing (jobId) where AWS gives JobId",
            StateTaskServiceBatch,
            "_normalise_response",
            _batch_response_casing,
        ),
        Fix(
            "s3-key-file-body",
            "FakeKey copies every body through memory; let it adopt a body already in a file",
            FakeKey,
            "value",
            _key_file_body,
        ),
        Fix(
            "s3-multipart-complete",
            "CompleteMultipartUpload joins every part in memory (and again for its checksum)",
            FakeMultipart,
            "complete",
            _multipart_complete_streaming,
        ),
        Fix(
            "s3-get-object-streaming",
            "GetObject reads the whole body into memory before sending it",
            S3Response,
            "get_object",
            _get_object_streaming,
        ),
        Fix(
            "s3-upload-part-copy-range",
            "UploadPartCopy reads the whole source object for every part",
            S3Backend,
            "upload_part_copy",
            _upload_part_copy_range,
        ),
        Fix(
            "s3-copy-object-streaming",
            "CopyObject reads the whole source object into memory",
            S3Backend,
            "copy_object",
            _copy_object_streaming,
        ),
        Fix(
            "sfn-parse-once",
            "every execution parses and preprocesses the whole definition again",
            ExecutionWorker,
            "_get_evaluation_entrypoint",
            _sfn_parse_once,
        ),
        Fix(
            "sfn-client-reuse",
            "every Task state creates a new boto3 client to call the endpoint",
            sfn_boto_client,
            "boto3",
            _sfn_client_reuse,
        ),
        Fix(
            "sfn-jsonpath-cache",
            "every JSONPath evaluation builds a new parser",
            sfn_json_path,
            "parse",
            _cached_jsonpath,
        ),
        Fix(
            "sfn-result-path-cache",
            "every ResultPath evaluation builds a new JSONPath parser",
            result_path,
            "parse",
            _cached_jsonpath,
        ),
        Fix(
            "server-dispatch-cache",
            "every request lists moto's folder and matches every URL pattern under one lock",
            DomainDispatcherApplication,
            "get_backend_for_host",
            _dispatch_cache,
        ),
        Fix(
            "persist-s3-put",
            "hook: PutObject reports the key it wrote (before answering)",
            S3Response,
            "put_object",
            _object_written,
        ),
        Fix(
            "persist-s3-copy",
            "hook: CopyObject reports the key it wrote (before answering)",
            S3Response,
            "copy_object",
            _object_written,
        ),
        Fix(
            "persist-s3-delete",
            "hook: DeleteObject reports the key it deleted (before answering)",
            S3Response,
            "delete_object",
            _object_written,
        ),
        Fix(
            "persist-s3-key-post",
            "hook: CompleteMultipartUpload (a POST on the key) reports the key it wrote",
            S3Response,
            "_key_response_post",
            _key_post_written,
        ),
        Fix(
            "persist-s3-bucket-post",
            "hook: DeleteObjects and browser form uploads (POSTs on the bucket) report it",
            S3Response,
            "_bucket_response_post",
            _bucket_post_written,
        ),
        Fix(
            "persist-execution-start",
            "hook: an execution reports its start",
            SfnExecution,
            "start",
            _execution_started,
        ),
        Fix(
            "persist-execution-end",
            "hook: an execution reports its end (status, output, history complete)",
            BaseExecutionWorkerCommunication,
            "terminated",
            _execution_ended,
        ),
        Fix(
            "s3-complete-if-match",
            "CompleteMultipartUpload ignores If-Match",
            S3Response,
            "_key_response_post",
            _s3_complete_if_match,
        ),
        Fix(
            "sfn-mock-config",
            "StartExecution on <arn>#<TestCase> never loads a MockConfigFile",
            StepFunctionsParserBackend,
            "start_execution",
            _sfn_mock_config,
        ),
        Fix(
            "sfn-mock-states-error",
            "a mocked Throw of a States.* error (States.TaskFailed from a .sync job, "
            "States.Timeout) ends in States.Runtime",
            mock_eval_utils,
            "CustomErrorName",
            _fail_error_name,
        ),
        Fix(
            "sfn-mock-config-worker",
            "an execution never hands its mock test case to its worker",
            SfnExecution,
            "_get_start_execution_worker",
            _sfn_mock_worker,
        ),
        Fix(
            "sfn-redrive-execution",
            "moto has no RedriveExecution",
            StepFunctionResponse,
            "redrive_execution",
            _redrive_execution,
        ),
        Fix(
            "sfn-redrive-describe",
            "DescribeExecution lacks redriveCount/redriveStatus",
            StepFunctionResponse,
            "describe_execution",
            _redrive_describe,
        ),
        Fix(
            "sfn-redrive-list",
            "ListExecutions lacks redriveCount",
            StepFunctionResponse,
            "list_executions",
            _redrive_list,
        ),
    )
}


def apply_all() -> None:
    for fix in FIXES.values():
        fix.apply()


def revert_all() -> None:
    # newest first: fixes wrapping the same attribute (s3-complete-if-match over
    # persist-s3-key-post) unwind in the order they were stacked
    for fix in reversed(list(FIXES.values())):
        fix.revert()
