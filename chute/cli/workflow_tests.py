"""``chute test-workflow``: the workflow's MockConfigFile cases on the embedded engine (default),
on Step Functions Local (``--endpoint-url``) or, state by state, on AWS through TestState
(``--stack``); parsing and presentation over chute.ops.workflow_tests. Exit codes
(chute.cli.options.Exit): 0 every case as expected, 1 some case not, 2 bad usage or files,
3 the target could not be started or reached."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from chute.cli.console import console, err
from chute.cli.options import Exit
from chute.ops.mock_cases import CaseResult, MockConfigError, StateResult, state_cases


def _case_table(results: list[CaseResult], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("case", "result", "status", "error", "ended in", "problems"):
        table.add_column(column, overflow="fold")
    for r in results:
        observed = r.observed
        table.add_row(
            r.name,
            "[green]ok[/]" if r.ok else "[red]FAIL[/]",
            observed.status if observed else "-",
            (observed.error if observed else None) or "",
            observed.path[-1] if observed and observed.path else "-",
            "; ".join(r.problems),
        )
    return table


def _state_table(results: list[StateResult], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("state / mock #attempt", "result", "status", "next / error", "problems"):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(
            r.case.name,
            "[green]ok[/]" if r.ok else "[red]FAIL[/]",
            r.status or "-",
            r.next_state or r.error or "",
            "; ".join(r.problems),
        )
    return table


def _case_json(r: CaseResult) -> dict[str, Any]:
    o = r.observed
    return {
        "case": r.name,
        "ok": r.ok,
        "expected": {
            "status": r.expected.status,
            "error": r.expected.error,
            "path": list(r.expected.path),
        },
        "observed": None
        if o is None
        else {"status": o.status, "error": o.error, "path": list(o.path), "attempts": o.attempts},
        "problems": list(r.problems),
    }


def _state_json(r: StateResult) -> dict[str, Any]:
    c = r.case
    return {
        "state": c.state,
        "mock": c.response,
        "attempt": c.attempt,
        "ok": r.ok,
        "expected": {"status": c.status, "nextState": c.next_state, "error": c.error},
        "observed": {"status": r.status, "nextState": r.next_state, "error": r.error},
        "problems": list(r.problems),
    }


app = typer.Typer()


@app.command("test-workflow")
def test_workflow(
    case: Annotated[
        list[str] | None,
        typer.Option("--case", help="Run only this test case (repeatable)."),
    ] = None,
    mock_config: Annotated[
        Path | None,
        typer.Option(
            help="A MockConfigFile (Step Functions Local's format); its expected outcomes "
            "are read from expectations.json beside it. Default: "
            "workflows/tests/MockConfigFile.json."
        ),
    ] = None,
    expectations: Annotated[
        Path | None, typer.Option(help="Expected outcomes (default: beside the file).")
    ] = None,
    workflow: Annotated[
        Path | None,
        typer.Option(help="The workflow to test (default: workflows/pipeline.asl.json)."),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            help="Run on this Step Functions endpoint, which reads the MockConfigFile "
            "itself (Step Functions Local: `docker compose up -d`, http://localhost:8083)."
        ),
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(
            help="AWS: test each mocked state of this stack's deployed state machine "
            "through the TestState API (no execution, no service called)."
        ),
    ] = None,
    profile: Annotated[str | None, typer.Option(help="AWS: profile.")] = None,
    region: Annotated[str | None, typer.Option(help="AWS: region.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the cases.")] = 300,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Run the workflow's test cases (mocked task answers) and compare each one's final
    status, error and states with its expectation; see docs/testing-workflows.md."""
    from chute.local.workflow_target import embedded_target
    from chute.ops import workflow_tests as wt

    if stack is not None and endpoint_url is not None:
        err.print("[red]error:[/] --stack and --endpoint-url are exclusive")
        raise typer.Exit(Exit.USAGE)
    try:
        suite = wt.Suite.load(
            mock_config or wt.DEFAULT_MOCK_CONFIG,
            expectations=expectations,
            workflow=workflow or wt.DEFAULT_WORKFLOW,
        )
        names = suite.select(case)
    except MockConfigError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(Exit.USAGE) from exc
    if stack is not None:
        _on_aws(suite, names, stack, profile, region, as_json)
        return
    try:
        if endpoint_url is not None:
            sfn, arn = wt.endpoint_target(suite, endpoint_url)
            results = wt.run_cases(sfn, arn, suite, names, timeout=timeout)
            where = f"Step Functions at {endpoint_url}"
        else:
            with embedded_target(suite) as (sfn, arn):
                results = wt.run_cases(sfn, arn, suite, names, timeout=timeout)
            where = "the embedded engine"
    except wt.TargetError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(Exit.RUNTIME) from exc
    if as_json:
        console.print_json(json.dumps([_case_json(r) for r in results]))
    else:
        passed = sum(r.ok for r in results)
        console.print(
            _case_table(results, f"chute test-workflow on {where}: {passed}/{len(results)}")
        )
    raise typer.Exit(Exit.OK if all(r.ok for r in results) else Exit.FAILED)


def _on_aws(
    suite: Any, names: list[str], stack: str, profile: str | None, region: str | None, as_json: bool
) -> None:
    from chute.ops import workflow_tests as wt
    from chute.ops.deployment import DeploymentError, connect

    try:
        d = connect(stack=stack, profile=profile, region=region)
        definition, role = wt.deployed_workflow(d.sfn, d.state_machine_arn)
    except DeploymentError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(Exit.RUNTIME) from exc
    try:
        cases = [
            c for c in state_cases(suite.config, suite.expectations) if set(c.cases) & set(names)
        ]
    except MockConfigError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(Exit.USAGE) from exc
    results = wt.run_test_states(
        d.sfn, cases, definition=definition, role_arn=role, expectations=suite.expectations
    )
    if as_json:
        console.print_json(json.dumps([_state_json(r) for r in results]))
    else:
        passed = sum(r.ok for r in results)
        console.print(
            _state_table(
                results, f"chute test-workflow: TestState on {stack}: {passed}/{len(results)}"
            )
        )
    raise typer.Exit(Exit.OK if all(r.ok for r in results) else Exit.FAILED)
