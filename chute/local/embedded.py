"""The embedded local AWS: an in-process AWS endpoint (moto's server with its Amazon States
Language interpreter) on 127.0.0.1, holding the same resources the CDK stack deploys, with the
project's own handlers executing Lambda tasks and its own container command executing Batch jobs.

This module and its helpers (local_stack, moto_patches, lambda_workers, batch_jobs, event_source,
grant_api) are the one place where running locally differs from running on AWS.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chute import DEFAULT_PORT
from chute.local import heap, iam
from chute.local.batch_jobs import LocalBatch
from chute.local.event_source import SqsEventSource
from chute.local.faults import BATCH_ACCESS_KEY, Faults, FaultSpecError, batch_access_key
from chute.local.faults import parse as parse_faults
from chute.local.grant_api import Authorizer, GrantApi
from chute.local.holds import Hold, Holds
from chute.local.lambda_workers import (
    IDLE_SECONDS,
    FunctionSpec,
    InvokeResult,
    LambdaWorkers,
    WorkerStartFailed,
)
from chute.local.local_stack import REPO_ROOT, LocalStack, queue_arn
from chute.local.persistence import Persistence, Recovery
from chute.ops import deployment
from chute.ops.resources import ACCOUNT_ID, DEFAULT_REGION, Resources
from tasks import names
from tasks.batch_sizing import BatchSizing


class EmbeddedError(RuntimeError):
    """The embedded runtime could not start."""


class PortInUse(EmbeddedError):
    """The endpoint's port is taken (another `chute up`, LocalStack...)."""


@dataclass
class LocalSettings:
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    region: str = DEFAULT_REGION
    prefix: str = "chute"
    large_file_threshold_bytes: int = names.DEFAULT_LARGE_FILE_THRESHOLD_BYTES
    batch_timeout_seconds: int = names.DEFAULT_BATCH_TIMEOUT_SECONDS
    time_scale: float = 1.0
    state_dir: Path = field(default_factory=lambda: Path(".chute"))
    suffixes: tuple[str, ...] = names.DEFAULT_SUFFIXES
    max_receive_count: int = 3
    visibility_timeout_seconds: int = 30
    grant_port: int | None = None
    """Serve the grant API's twin on this port (None: not served; `chute up` serves it)."""
    persist: bool = True
    """Keep buckets and executions under ``state_dir/state`` across restarts
    (chute.local.persistence)."""
    fresh: bool = False
    """Start empty: delete the kept state first."""
    faults: tuple[str, ...] = ()
    """Fault rules armed at start (chute.local.faults syntax; `chute up --fault`, CHUTE_FAULTS)."""
    mock_config: Path | None = None
    """Step Functions Local's MockConfigFile: StartExecution on ``<arn>#<TestCase>`` runs with
    its mocked answers (`chute up --mock-config`, SFN_MOCK_CONFIG; docs/testing-workflows.md)."""
    worker_idle_seconds: float = IDLE_SECONDS
    """Workers idle this long are stopped (a new one is forked from the runtime's template in
    ~0.1 s: chute.local.lambda_runtime)."""
    iam: bool = field(default_factory=lambda: iam.enabled())
    """Each function and the Batch job may do only what the stack's role allows it
    (chute.local.iam; `chute up --no-iam`, CHUTE_LOCAL_IAM=0 turn it off)."""
    fanout_threshold_bytes: int = names.DEFAULT_FANOUT_THRESHOLD_BYTES
    fanout_part_bytes: int = names.DEFAULT_FANOUT_PART_BYTES
    fanout_max_concurrency: int = names.DEFAULT_FANOUT_MAX_CONCURRENCY
    """One file across many workers (tasks.fanout), as the stack's chute:fanout_* settings."""
    batch_sizing: BatchSizing = field(default_factory=BatchSizing)
    """The Batch job's vCPU and memory per file, as the stack's; a local job runs on as many of
    this machine's cores as it was given."""
    max_running_executions: int = 100
    """The staging queue's event source receives no more files while this many executions of
    the pipeline are running: a backlog waits in the queue (chute.local.event_source)."""


def check_port_free(host: str, port: int, option: str = "--port") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as the server binds: a restart must not wait for the last run's TIME_WAIT connections
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUse(
                f"port {port} on {host} is already in use; pick another with {option}"
            ) from exc


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedAws:
    """Start with ``with EmbeddedAws(settings) as aws: ...`` (or start()/stop())."""

    def __init__(self, settings: LocalSettings | None = None) -> None:
        self.settings = settings or LocalSettings()
        # port 0: a free port, chosen now (as a server binding port 0 would get one)
        if self.settings.port == 0:
            self.settings.port = free_port(self.settings.host)
        if self.settings.grant_port == 0:
            self.settings.grant_port = free_port(self.settings.host)
        self.resources = Resources(prefix=self.settings.prefix, region=self.settings.region)
        self.iam_policies: dict[str, list[Any]] = {}
        self.iam_dir: Path | None = None  # the policies' files (None: IAM not enforced)
        self.endpoint_url = f"http://{self.settings.host}:{self.settings.port}"
        self.log_dir = self.settings.state_dir / "logs"
        self._server: Any = None
        self._workers: LambdaWorkers | None = None
        self._batch: LocalBatch | None = None
        self._event_source: SqsEventSource | None = None
        self._grant_api: GrantApi | None = None
        self.user_pool_id = ""
        self.user_pool_client_id = ""
        self._faults: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self._faults_lock = threading.Lock()
        self.holds = Holds()
        """The functions whose first worker was started with the runtime."""
        self._state: Persistence | None = None
        self._settled = 0
        self.recovery = Recovery()
        self.faults = Faults(function_name=self.resources.function_name)
        """Injected S3 errors and worker kills (chute.local.faults); ``faults.add(rule)`` arms
        more."""

    # --- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> EmbeddedAws:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> EmbeddedAws:
        from moto.core.config import default_user_config
        from moto.moto_api import state_manager
        from moto.server import ThreadedMotoServer

        from chute.local import moto_patches

        self._check_settings()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.log_dir / "batch").mkdir(exist_ok=True)
        # The ASL interpreter calls back into the server on localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(self.settings.port)
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        default_user_config["batch"] = {"use_docker": False}
        # Jobs change status only when our runner says so (not on every DescribeJobs).
        state_manager.set_transition("batch::job", {"progression": "manual", "times": 10**9})

        self._workers = LambdaWorkers(
            log_dir=self.log_dir,
            idle_seconds=self.settings.worker_idle_seconds,
            preload=tuple(sorted({h.rpartition(".")[0] for h in names.HANDLERS.values()})),
            environment=self._process_env(),
        )
        self._workers.start()  # its imports run while the endpoint starts
        if self.settings.iam:
            self.iam_dir = self.settings.state_dir.resolve() / "iam"  # workers' cwd differs
            for step, statements in iam.load_policies(iam.local_values(self.resources)).items():
                self.set_policy(step, statements)
        self._batch = LocalBatch(
            base_env={**self._process_env(), "AWS_ACCESS_KEY_ID": BATCH_ACCESS_KEY},
            log_dir=self.log_dir / "batch",
            cwd=REPO_ROOT,
            door=lambda env: self.holds.pass_through("batch", env.get(names.ENV_JOB_FILE, "")),
            job_env=lambda job_id: {
                "AWS_ACCESS_KEY_ID": batch_access_key(job_id),
                **iam.process_environment(self.iam_dir, "batch", self.resources.account),
            },
        )
        self._bind_faults()
        moto_patches.HOOKS.request_filter = self.faults.wsgi_filter
        moto_patches.HOOKS.lambda_executor = self._invoke_lambda
        moto_patches.HOOKS.batch_executor = self._batch.submit
        moto_patches.HOOKS.time_scale = self.settings.time_scale
        moto_patches.HOOKS.mock_config_file = self.settings.mock_config
        moto_patches.apply_all()
        if self.settings.persist:
            self._state = Persistence(self.settings.state_dir / "state", self.resources)
            self._state.open(fresh=self.settings.fresh)

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        logging.getLogger("moto").setLevel(logging.CRITICAL)
        self._server = ThreadedMotoServer(
            ip_address=self.settings.host, port=self.settings.port, verbose=False
        )
        self._server.start()
        created = LocalStack(self.client, self.resources, self.settings).create()
        self.user_pool_id, self.user_pool_client_id = created.user_pool_id, created.client_id
        if self._state:
            self.recovery = self._state.restore()
        self.faults.add(self.settings.faults)
        self._start_event_source()
        if self._state:
            self._state.announce(self.settings.suffixes)
        if self.settings.grant_port is not None:
            self._start_grant_api(self.settings.grant_port)
        heap.settle()  # what the start-up dropped goes back to the system, the rest is frozen
        return self

    def _check_settings(self) -> None:
        """Fault rules that parse, and free ports (before anything starts)."""
        try:
            parse_faults(self.settings.faults)
        except FaultSpecError as exc:
            raise EmbeddedError(str(exc)) from exc
        check_port_free(self.settings.host, self.settings.port)
        if self.settings.grant_port is not None:
            if self.settings.grant_port == self.settings.port:
                raise EmbeddedError(
                    "the grant API needs a port of its own, not the endpoint's"
                    f" ({self.settings.port}): pick another --grant-port"
                )
            check_port_free(self.settings.host, self.settings.grant_port, "--grant-port")

    def _start_grant_api(self, port: int) -> None:
        try:
            self._grant_api = GrantApi(
                host=self.settings.host,
                port=port,
                authorizer=self._authorizer(),
                invoke=self._invoke_grant,
            )
        except OSError as exc:  # taken since the check in start()
            raise PortInUse(
                f"port {port} on {self.settings.host} is already in use;"
                " pick another with --grant-port"
            ) from exc
        self._grant_api.start()

    def _start_event_source(self) -> None:
        """The staging queue's poller delivering to the trigger (chute.local.event_source)."""
        self._event_source = SqsEventSource(
            sqs=self.client("sqs"),
            lambda_client=self.client("lambda"),
            queue_url=self.queue_url(),
            queue_arn=self._queue_arn(self.resources.queue_name),
            function_name=self.resources.function_name("trigger"),
            region=self.settings.region,
            running=self.running_executions,
            max_running=self.settings.max_running_executions,
        )
        self._event_source.start()

    @property
    def grant_url(self) -> str | None:
        return self._grant_api.url if self._grant_api else None

    @property
    def issuer(self) -> str:
        region = self.settings.region
        return f"https://cognito-idp.{region}.amazonaws.com/{self.user_pool_id}"

    def stop(self) -> None:
        from chute.local import moto_patches  # imports moto: only when the runtime was used

        if self._grant_api:
            self._grant_api.stop()
            self._grant_api = None
        if self._event_source:
            self._event_source.stop()
        if self._batch:
            self._batch.close()
        if self._workers:
            self._workers.close()
        if self._server:
            self._server.stop()
            self._server = None
        if self._state:
            self._state.close()
        moto_patches.HOOKS.lambda_executor = None
        moto_patches.HOOKS.batch_executor = None
        moto_patches.HOOKS.request_filter = None
        moto_patches.HOOKS.mock_config_file = None
        moto_patches.revert_all()

    # --- clients ------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        return deployment.client(
            service, endpoint_url=self.endpoint_url, region=self.settings.region, max_attempts=3
        )

    def queue_url(self, name: str | None = None) -> str:
        resp = self.client("sqs").get_queue_url(QueueName=name or self.resources.queue_name)
        return str(resp["QueueUrl"])

    def set_policy(self, step: str, statements: list[Any]) -> None:
        """``step``'s role policy from now on (its workers read it again at their next call):
        what tests use to take a statement away (chute.local.iam)."""
        assert self.iam_dir is not None, "IAM is not enforced (LocalSettings.iam)"
        self.iam_policies[step] = statements
        iam.write_policy(self.iam_dir, step, statements)

    def _queue_arn(self, name: str) -> str:
        return queue_arn(self.settings.region, name)

    def _process_env(self) -> dict[str, str]:
        """What a Lambda worker or Batch process sees besides its own settings."""
        env = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "chute",
            "AWS_SECRET_ACCESS_KEY": "chute",
            "AWS_DEFAULT_REGION": self.settings.region,
            "AWS_REGION": self.settings.region,
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT"):
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    # --- fault injection (for tests and demos of Retry) ---------------------------------------
    def inject_fault(self, step: str, error_type: str, message: str = "", times: int = 1) -> None:
        """The next ``times`` invocations of ``step`` fail with ``error_type`` without running
        the handler, exactly as a raised exception of that class would be reported."""
        with self._faults_lock:
            self._faults[self.resources.function_name(step)].extend(
                [(error_type, message or f"injected {error_type}")] * times
            )

    def batch_jobs_running(self) -> int:
        """Batch job processes running now (tests arm a job's fault once no other job runs)."""
        assert self._batch is not None
        return self._batch.running()

    def inject_batch_exit(self, exit_code: int, times: int = 1) -> None:
        """The next ``times`` Batch job attempts end with ``exit_code``."""
        assert self._batch is not None
        self._batch.inject_exit(exit_code, times)

    def hold(self, step: str, key: str) -> Hold:
        """The next invocation of ``step`` (validate, convert, archive, quarantine or batch)
        for ``key`` waits before running until the returned hold is released."""
        return self.holds.add(step, key)

    def _bind_faults(self) -> None:
        """Let chute.local.faults signal our workers and use the injections above."""
        workers, batch = self._workers, self._batch
        assert workers is not None and batch is not None

        def signal_process(function_name: str | None, signum: int, job: str | None) -> int | None:
            if function_name is None:
                return batch.signal_running(signum, job)
            return workers.signal_running(function_name, signum)

        self.faults.signal_process = signal_process
        self.faults.inject_step_error = lambda step, error, times: self.inject_fault(
            step, error, times=times
        )
        self.faults.inject_batch_exit = self.inject_batch_exit

    def _take_fault(self, function_name: str) -> tuple[str, str] | None:
        with self._faults_lock:
            queue = self._faults.get(function_name)
            return queue.pop(0) if queue else None

    # --- hooks --------------------------------------------------------------------------------
    def _invoke_lambda(self, fn: Any, event: Any) -> tuple[str, bool, str]:
        assert self._workers is not None
        step = fn.function_name.removeprefix(f"{self.resources.prefix}-")
        self.holds.pass_through(step, event)
        fault = self._take_fault(fn.function_name)
        if fault is not None:
            error = {"errorType": fault[0], "errorMessage": fault[1]}
            return json.dumps(error), True, ""
        try:
            result: InvokeResult = self._workers.invoke(self._spec(fn), event)
        except WorkerStartFailed as exc:
            from chute.local.moto_patches.seam import ServiceFailure

            raise ServiceFailure(str(exc)) from exc
        return result.payload, result.errored, result.logs

    def _spec(self, fn: Any) -> FunctionSpec:
        env = {
            **self._process_env(),
            **{str(k): str(v) for k, v in (fn.environment_vars or {}).items()},
            # tells the endpoint who calls (chute.local.faults)
            "AWS_ACCESS_KEY_ID": fn.function_name,
            "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        }
        step = fn.function_name.removeprefix(f"{self.resources.prefix}-")
        env.update(iam.process_environment(self.iam_dir, step, self.resources.account))
        return FunctionSpec(
            name=fn.function_name,
            handler=fn.handler,
            environment=env,
            timeout_seconds=float(fn.timeout),
        )

    def running_executions(self) -> int:
        """Executions of the pipeline not yet ended. The list only grows and executions mostly
        end in the order they started: the ended ones at its start are skipped from then on."""
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        backend = stepfunctions_parser_backends[ACCOUNT_ID][self.settings.region]
        executions = backend.describe_state_machine(self.resources.state_machine_arn).executions
        while self._settled < len(executions) and _ended(executions[self._settled]):
            self._settled += 1
        return sum(1 for e in executions[self._settled :] if not _ended(e))

    def worker_processes(self, step: str) -> int:
        """Live worker processes of a function (``validate``, ``convert``...)."""
        return self._workers.workers(self.resources.function_name(step)) if self._workers else 0

    # --- the grant API's twin -----------------------------------------------------------------
    def _authorizer(self) -> Authorizer:
        """The user pool's signing keys, fetched from its JWKS URL as API Gateway does (moto
        serves it at ``<endpoint>/<pool id>/.well-known/jwks.json``)."""
        url = f"{self.endpoint_url}/{self.user_pool_id}/.well-known/jwks.json"
        with urllib.request.urlopen(url, timeout=10) as response:
            jwks = json.load(response)
        return Authorizer.from_jwks(self.issuer, (self.user_pool_client_id,), jwks)

    def _invoke_grant(self, event: dict[str, Any]) -> dict[str, Any] | None:
        response = self.client("lambda").invoke(
            FunctionName=self.resources.function_name("grant"), Payload=json.dumps(event)
        )
        if response.get("FunctionError"):
            return None
        result = json.loads(response["Payload"].read() or b"null")
        return result if isinstance(result, dict) else None

    # --- resources ----------------------------------------------------------------------------
    def substitutions(self) -> dict[str, str]:
        return LocalStack(self.client, self.resources, self.settings).substitutions()


def _ended(execution: Any) -> bool:
    """A live execution of moto's interpreter that has ended (None: not started yet); a
    restored record (chute.local.persistence) is never running."""
    status = getattr(execution, "exec_status", "restored")
    return status is not None and getattr(status, "value", status) != "RUNNING"
