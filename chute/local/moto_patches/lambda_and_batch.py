"""Lambda and Batch: moto runs neither our functions nor our jobs without Docker, so chute's own
runners take their place (chute.local.lambda_workers, chute.local.batch_jobs, plugged into
``HOOKS`` by the embedded runtime; a worker that can't be started is Lambda's own 500), and
DescribeJobs reports the exit code as AWS does.
"""

from __future__ import annotations

from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.batch.models import Job
from moto.batch_simple.models import BatchSimpleBackend
from moto.core.exceptions import JsonRESTError

from chute.local.moto_patches.seam import HOOKS, Fixes, Kind, ServiceFailure

FIXES = Fixes()


@FIXES.declare(
    "lambda-executor",
    Kind.HOOK,
    LambdaFunction,
    "_invoke_lambda",
    why="moto runs Lambda code only in Docker; run our handlers in local worker processes",
)
def _lambda_executor(original: Any) -> Any:
    def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        if HOOKS.lambda_executor is None:
            return original(self, event)  # type: ignore[no-any-return]
        try:
            return HOOKS.lambda_executor(self, event)
        except ServiceFailure as exc:
            raise LambdaServiceException(str(exc)) from exc

    return _invoke_lambda


class LambdaServiceException(JsonRESTError):
    """Lambda's answer when the service failed (HTTP 500 ``ServiceException``): Step Functions
    reports it as ``Lambda.ServiceException``, which the workflow retries."""

    code = 500

    def __init__(self, message: str) -> None:
        super().__init__("ServiceException", message)


@FIXES.declare(
    "batch-executor",
    Kind.HOOK,
    BatchSimpleBackend,
    "_mark_job_as_finished",
    why="moto's docker-less Batch marks jobs SUCCEEDED without running anything",
)
def _batch_executor(original: Any) -> Any:
    def _mark_job_as_finished(self: Any, include_start_attempt: bool, job: Job) -> None:
        if HOOKS.batch_executor is None:
            original(self, include_start_attempt, job)
            return
        self.backend._jobs[job.job_id] = job
        HOOKS.batch_executor(job)

    return _mark_job_as_finished


@FIXES.declare(
    "batch-exit-code",
    Kind.BEHAVIOUR,
    Job,
    "_container_details",
    why="DescribeJobs lacks container.exitCode, which the workflow classifies failures by",
)
def _batch_exit_code(original: Any) -> Any:
    def _container_details(self: Job) -> dict[str, Any]:
        details: dict[str, Any] = original(self)
        if self.exit_code is not None:
            details["exitCode"] = self.exit_code
        return details

    return _container_details
