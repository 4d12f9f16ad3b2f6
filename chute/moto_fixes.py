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
  request-filter    every HTTP request to the endpoint passes chute.faults first (injected
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
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import botocore.session
from moto.awslambda.models import LambdaFunction
from moto.batch.models import Job
from moto.batch_simple.models import BatchSimpleBackend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3 import notifications as s3_notifications
from moto.s3.models import S3Backend
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch import (  # noqa: E501
    StateTaskServiceBatch,
)
from moto.stepfunctions.parser.asl.component.state.fail import state_fail
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

LambdaExecutor = Callable[[LambdaFunction, Any], tuple[str, bool, str]]
BatchExecutor = Callable[[Job], None]
RequestFilter = Callable[[dict[str, Any]], tuple[str, list[tuple[str, str]], bytes] | None]


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
        self.original = getattr(self.owner, self.attribute)
        setattr(self.owner, self.attribute, self.replacement_factory(self.original))
        self.applied = True

    def revert(self) -> None:
        if self.applied:
            setattr(self.owner, self.attribute, self.original)
            self.applied = False

    def current_original(self) -> Any:
        return self.original if self.applied else getattr(self.owner, self.attribute)


# --- hooks ------------------------------------------------------------------------------------
class _Hooks:
    lambda_executor: LambdaExecutor | None = None
    batch_executor: BatchExecutor | None = None
    time_scale: float = 1.0
    request_filter: RequestFilter | None = None


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
    )
}


def apply_all() -> None:
    for fix in FIXES.values():
        fix.apply()


def revert_all() -> None:
    for fix in FIXES.values():
        fix.revert()
