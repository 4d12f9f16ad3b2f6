"""Run AWS Batch jobs as local processes: the job definition's command, its environment plus the
submitted container overrides, its attempt timeout and its ``retryStrategy`` (``evaluateOnExit``
by exit code, first match wins, as on AWS). The exit code decides SUCCEEDED/FAILED; the state
machine's ``.sync`` integration polls DescribeJobs until then.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any


def resolve_command(command: list[str]) -> list[str]:
    """The container runs ``python``; locally that is this interpreter (the project's venv),
    and ``python -m M`` runs M under the job role's policy (chute.local.iam)."""
    if command[:2] in (["python", "-m"], ["python3", "-m"]):
        return [sys.executable, "-m", "chute.local.iam", *command[2:]]
    if command and command[0] in ("python", "python3"):
        return [sys.executable, *command[1:]]
    return list(command)


def job_environment(job: Any) -> dict[str, str]:
    """Job definition environment overlaid with the submitted overrides (names as AWS sends)."""
    props = job.job_definition.container_properties or {}
    env = {e["name"]: e["value"] for e in props.get("environment", [])}
    for entry in job.container_overrides.get("environment", []) or []:
        env[entry.get("name") or entry.get("Name")] = entry.get("value") or entry.get("Value", "")
    env["AWS_BATCH_JOB_ID"] = job.job_id
    env["AWS_BATCH_JOB_ATTEMPT"] = str(len(job.attempts))
    return env


def job_vcpus(job: Any) -> int | None:
    """The vCPU count the job was given: its submitted ``resourceRequirements`` override (the
    state machine sizes each job to its file), else its definition's; None if neither says."""
    props = job.job_definition.container_properties or {}
    overrides = job.container_overrides or {}
    for requirements in (
        overrides.get("resourceRequirements") or overrides.get("ResourceRequirements"),
        props.get("resourceRequirements"),
    ):
        for entry in requirements or []:
            kind = entry.get("type") or entry.get("Type")
            if str(kind).upper() == "VCPU":
                try:
                    return max(1, math.ceil(float(entry.get("value") or entry.get("Value"))))
                except (TypeError, ValueError):
                    return None
    return None


def job_cpus(vcpus: int | None, host: set[int]) -> set[int] | None:
    """The CPUs a local job may run on: as many of the host's as the job has vCPUs (all of them
    when it has more, or None: no limit), so the engine sizes itself as in the container."""
    if vcpus is None or vcpus >= len(host):
        return None
    return set(sorted(host)[:vcpus])


def retry_decision(strategy: Mapping[str, Any] | None, exit_code: int, attempt: int) -> bool:
    """Whether Batch would start another attempt after ``attempt`` (1-based) ended with
    ``exit_code``. Without evaluateOnExit every failure is retried up to ``attempts``."""
    strategy = strategy or {}
    attempts = int(strategy.get("attempts", 1))
    if attempt >= attempts:
        return False
    for rule in strategy.get("evaluateOnExit", []) or []:
        pattern = rule.get("onExitCode")
        if pattern is not None and fnmatch.fnmatchcase(str(exit_code), pattern):
            return str(rule.get("action", "")).upper() == "RETRY"
    return True


def _host_cpus() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


class LocalBatch:
    """Executes submitted jobs on background threads."""

    def __init__(
        self,
        base_env: Mapping[str, str],
        log_dir: Path,
        cwd: Path,
        door: Callable[[dict[str, str]], None] | None = None,
        job_env: Callable[[str], Mapping[str, str]] = lambda job_id: {},
    ) -> None:
        """``job_env``: more environment for one job's process, by job id."""
        self._door = door
        self._base_env = dict(base_env)
        self._job_env = job_env
        self._log_dir = log_dir
        self._cwd = cwd
        self._threads: list[threading.Thread] = []
        self._processes: dict[subprocess.Popen[bytes], str] = {}  # -> job id
        self._lock = threading.Lock()
        self._closed = False
        self._faults: list[int] = []

    def inject_exit(self, exit_code: int, times: int = 1) -> None:
        """The next ``times`` attempts end with ``exit_code`` without running the command."""
        with self._lock:
            self._faults.extend([exit_code] * times)

    def submit(self, job: Any) -> None:
        thread = threading.Thread(target=self._run, args=(job,), daemon=True, name=job.job_id)
        self._threads.append(thread)
        thread.start()

    def _run(self, job: Any) -> None:
        from moto.batch.utils import JobStatus

        props = job.job_definition.container_properties or {}
        command = resolve_command(list(job.container_overrides.get("command") or props["command"]))
        strategy = job.job_definition.retry_strategy
        timeout = job._get_attempt_duration()
        log_path = self._log_dir / f"{job.job_id}.log"
        job.log_stream_name = f"{job.job_definition.name}/default/{job.job_id}"
        attempt = 0
        exit_code = 1
        if self._door is not None:
            self._door(job_environment(job))
        while True:
            attempt += 1
            job.job_started_at = datetime.now()
            job.status = JobStatus.RUNNING.value
            job._start_attempt()
            env = {**self._base_env, **job_environment(job), **self._job_env(job.job_id)}
            cpus = job_cpus(job_vcpus(job), _host_cpus())
            exit_code, reason = self._attempt(job.job_id, command, env, timeout, log_path, cpus)
            job.latest_attempt["container"]["exitCode"] = exit_code
            job.latest_attempt["statusReason"] = reason
            job.job_stopped_at = datetime.now()
            job._stop_attempt()
            if exit_code == 0 or self._closed or not retry_decision(strategy, exit_code, attempt):
                break
        job.exit_code = exit_code
        job.job_stopped_reason = None if exit_code == 0 else reason
        job._mark_stopped(success=exit_code == 0)

    def _attempt(
        self,
        job_id: str,
        command: list[str],
        env: dict[str, str],
        timeout: int | None,
        log_path: Path,
        cpus: set[int] | None = None,
    ) -> tuple[int, str]:
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            with log_path.open("ab") as log:
                log.write(f"injected exit code {fault}\n".encode())
            return fault, "Essential container in task exited"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=self._cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,  # a Ctrl-C at the terminal reaches chute, which stops the job
            )
            if cpus is not None:  # before the interpreter has started a thread
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(process.pid, cpus)
            with self._lock:
                self._processes[process] = job_id
            try:
                code = process.wait(timeout=timeout)
                if code < 0:  # killed by a signal: a container's exit code is 128 + signal
                    code = 128 - code
                reason = "Essential container in task exited"
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                code = 137
                reason = "Job attempt duration exceeded timeout"
            finally:
                with self._lock:
                    self._processes.pop(process, None)
        return code, reason

    def running(self) -> int:
        """How many job processes are running now."""
        with self._lock:
            return sum(1 for p in self._processes if p.poll() is None)

    def signal_running(self, signum: int, job_id: str | None = None) -> int | None:
        """Send ``signum`` to the running process of job ``job_id`` (None or "": of any job;
        fault injection). Its pid, or None."""
        with self._lock:
            running = [
                p
                for p, job in self._processes.items()
                if p.poll() is None and (not job_id or job == job_id)
            ]
        if not running:
            return None
        running[0].send_signal(signum)
        return int(running[0].pid)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            for process in list(self._processes):
                process.kill()
