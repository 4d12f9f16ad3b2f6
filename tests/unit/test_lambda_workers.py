"""The local Lambda runtime: warm processes, isolation, error types, enforced timeouts."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chute.local.lambda_workers import FunctionSpec, LambdaWorkers, WorkerStartFailed

BASE_ENV = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(Path(__file__).parents[2])}


def spec(handler: str, name: str = "fn", timeout: float = 10, **env: str) -> FunctionSpec:
    return FunctionSpec(
        name=name,
        handler=f"tests.fixtures.handlers.{handler}",
        environment={**BASE_ENV, "AWS_LAMBDA_FUNCTION_NAME": name, **env},
        timeout_seconds=timeout,
    )


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[LambdaWorkers]:
    pool = LambdaWorkers(log_dir=tmp_path)
    yield pool
    pool.close()


def test_result_comes_back_and_process_stays_warm(workers: LambdaWorkers) -> None:
    first = workers.invoke(spec("echo"), {"a": 1})
    second = workers.invoke(spec("echo"), {"a": 2})
    assert not first.errored
    assert json.loads(first.payload)["event"] == {"a": 1}
    assert json.loads(first.payload)["function"] == "fn"
    assert json.loads(first.payload)["pid"] == json.loads(second.payload)["pid"]


def test_exception_is_reported_with_its_class_name(workers: LambdaWorkers) -> None:
    result = workers.invoke(spec("fail"), {"message": "bad row 3"})
    assert result.errored
    error = json.loads(result.payload)
    assert error["errorType"] == "CustomProblem"
    assert error["errorMessage"] == "bad row 3"


def test_functions_do_not_share_environment(workers: LambdaWorkers) -> None:
    a = workers.invoke(spec("env", name="a", SETTING="for-a"), {"name": "SETTING"})
    b = workers.invoke(spec("env", name="b"), {"name": "SETTING"})
    assert json.loads(a.payload) == {"value": "for-a"}
    assert json.loads(b.payload) == {"value": None}


def test_timeout_kills_the_invocation_and_the_next_one_gets_a_fresh_process(
    workers: LambdaWorkers,
) -> None:
    result = workers.invoke(spec("slow", timeout=0.5), {"seconds": 30})
    assert result.errored
    assert json.loads(result.payload)["errorType"] == "Sandbox.Timedout"
    again = workers.invoke(spec("slow", timeout=5), {"seconds": 0})
    assert json.loads(again.payload) == {"slept": 0}


def test_a_crashing_process_is_reported_not_hung(workers: LambdaWorkers) -> None:
    result = workers.invoke(spec("crash"), {})
    assert result.errored
    assert json.loads(result.payload)["errorType"] == "Runtime.ExitError"


def test_pool_size_follows_the_cores() -> None:
    # GIVEN no explicit size WHEN a pool is created THEN it allows one worker per core (>= 2)
    pool = LambdaWorkers()
    try:
        assert pool.max_workers == max(2, os.cpu_count() or 2)
    finally:
        pool.close()


def test_workers_are_forked_from_the_template_with_boto3_and_its_data_already_loaded(
    workers: LambdaWorkers,
) -> None:
    # GIVEN a started runtime: its template, no worker yet
    workers.start()
    assert workers.workers("fn") == 0
    # WHEN two functions are invoked
    echo = json.loads(workers.invoke(spec("echo"), {}).payload)
    files = json.loads(workers.invoke(spec("botocore_files", name="s3"), {}).payload)
    # THEN each ran in a child of the template (not of this process), where an S3 client
    # parsed no botocore data file: the template had
    assert echo["parent"] != os.getpid()
    assert files["before"] > 0
    assert files["after"] == files["before"]


def test_a_preloaded_handler_module_is_imported_once_by_the_template(tmp_path: Path) -> None:
    # GIVEN a runtime whose template preloads the handlers' module, and one that doesn't
    preloaded = LambdaWorkers(log_dir=tmp_path, preload=("tests.fixtures.handlers",))
    plain = LambdaWorkers(log_dir=tmp_path)
    try:
        # WHEN two functions of each are invoked
        a = json.loads(preloaded.invoke(spec("echo", name="a"), {}).payload)
        b = json.loads(preloaded.invoke(spec("echo", name="b"), {}).payload)
        c = json.loads(plain.invoke(spec("echo"), {}).payload)
        # THEN the first two found it imported by their template; the other imported it itself
        assert a["imported_by"] == b["imported_by"] == a["parent"] != a["pid"]
        assert c["imported_by"] == c["pid"]
    finally:
        preloaded.close()
        plain.close()


def test_a_template_that_died_is_started_again(workers: LambdaWorkers) -> None:
    # GIVEN a worker's template killed after the worker started
    first = json.loads(workers.invoke(spec("echo", name="a"), {}).payload)
    os.kill(first["parent"], 9)
    # WHEN another function needs a new worker THEN it is forked from a new template
    second = json.loads(workers.invoke(spec("echo", name="b"), {}).payload)
    assert second["parent"] != first["parent"]
    # and the first worker, orphaned, still serves its function
    assert json.loads(workers.invoke(spec("echo", name="a"), {}).payload)["pid"] == first["pid"]


def test_a_worker_that_cannot_be_started_is_the_services_failure(
    workers: LambdaWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a template that can't fork a worker, more times than the pool has slots
    real, failures = workers._template.spawn, [workers._max_workers + 1]

    def spawn(*args: Any) -> Any:
        if failures[0]:
            failures[0] -= 1
            raise RuntimeError("could not start a worker: [Errno 11] Resource unavailable")
        return real(*args)

    monkeypatch.setattr(workers._template, "spawn", spawn)
    # WHEN invoked  THEN each invocation fails as the service's, saying why
    for _ in range(workers._max_workers + 1):
        with pytest.raises(WorkerStartFailed, match=r"fn: could not start a worker: \[Errno 11\]"):
            workers.invoke(spec("echo"), {})
    # AND no slot was kept by a failure: the next invocation runs
    assert "pid" in json.loads(workers.invoke(spec("echo"), {}).payload)


def test_idle_workers_are_stopped_down_to_the_ones_kept_warm(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.support.pipeline import wait_until

    pool = LambdaWorkers(log_dir=tmp_path, max_workers=3, idle_seconds=0.3, keep_warm=1)
    default = LambdaWorkers(log_dir=tmp_path, idle_seconds=0.3)
    try:
        # GIVEN a burst that needed three workers of one function
        with ThreadPoolExecutor(3) as burst:
            list(burst.map(lambda _: pool.invoke(spec("slow"), {"seconds": 0.5}), range(3)))
        assert pool.workers("fn") == 3
        # WHEN the function stays idle THEN its workers are stopped, except one kept warm
        wait_until(lambda: pool.workers("fn") == 1, timeout=10, what="idle workers stopped")
        result = pool.invoke(spec("slow"), {"seconds": 0})
        assert not result.errored
        # and by default none is kept: the next invocation forks a new one
        first = json.loads(default.invoke(spec("echo"), {}).payload)["pid"]
        wait_until(lambda: default.workers("fn") == 0, timeout=10, what="the idle worker stopped")
        assert json.loads(default.invoke(spec("echo"), {}).payload)["pid"] != first
    finally:
        pool.close()
        default.close()


def test_workers_are_out_of_reach_of_a_terminal_ctrl_c(workers: LambdaWorkers) -> None:
    # GIVEN a warm worker WHEN the terminal sends SIGINT to chute's process group
    # THEN the worker is not in it (chute stops it; no KeyboardInterrupt in its log)
    pid = json.loads(workers.invoke(spec("echo"), {}).payload)["pid"]
    assert os.getpgid(pid) != os.getpgid(0)


def test_invocations_waiting_for_a_worker_are_served_first_come_first_served(
    tmp_path: Path,
) -> None:
    def wait_until(predicate: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 30
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)

    # GIVEN a function with one worker, busy, and five invocations arriving one after another
    workers = LambdaWorkers(log_dir=tmp_path, max_workers=1)
    try:
        fn = spec("slow")
        workers.invoke(fn, {"seconds": 0})  # its worker is started
        pool = workers._pools[fn.name]
        done: list[int] = []
        busy = threading.Thread(target=workers.invoke, args=(fn, {"seconds": 2}))
        busy.start()
        wait_until(lambda: pool.busy == 1 and not pool.idle, what="the worker busy")
        waiting = []
        for i in range(5):
            t = threading.Thread(
                target=lambda i=i: (workers.invoke(fn, {"seconds": 0}), done.append(i))
            )
            t.start()
            waiting.append(t)
            wait_until(lambda i=i: len(pool.waiting) == i + 1, what=f"invocation {i} waiting")
        # WHEN the busy one and each after it finish
        for t in [busy, *waiting]:
            t.join(timeout=30)
        # THEN they were served in the order they came, each by the one warm worker
        assert done == [0, 1, 2, 3, 4]
        assert workers.workers(fn.name) == 1
    finally:
        workers.close()


def test_workers_of_one_function_never_mix_their_log_lines(tmp_path: Path) -> None:
    # GIVEN two workers of one function, both printing long JSON lines into its one log file
    pool = LambdaWorkers(log_dir=tmp_path, max_workers=2)
    try:
        event = {"lines": 200, "width": 3000}

        def invoke() -> None:
            for _ in range(3):
                assert not pool.invoke(spec("chatty"), event).errored

        # WHEN they print at the same time
        threads = [threading.Thread(target=invoke) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        pool.close()

    # THEN every line of the log is one whole line of one worker (each line written at once)
    lines = (tmp_path / "fn.log").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 * 3 * 200
    assert {json.loads(line)["line"] for line in lines} == set(range(200))
    assert len({json.loads(line)["pid"] for line in lines}) == 2
