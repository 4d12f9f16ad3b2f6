"""Validate's cold start stays free of polars (~0.2 s of imports it doesn't need to check a header).

Each check runs in a fresh interpreter: in this process polars is long loaded by other tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
CONTRACTS = REPO / "contracts" / "contracts.toml"


def heavy_modules_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    """Run ``code`` in a fresh interpreter; the heavy modules it left loaded."""
    probe = "\nimport sys; print(sorted(m for m in ('polars', 'pyarrow') if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code + probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = eval(done.stdout.strip().splitlines()[-1])  # the probe's list literal
    return loaded


@pytest.mark.parametrize(
    "module",
    ["tasks.validate.handler", "tasks.data_contracts.model", "tasks.data_contracts.config"],
)
def test_importing_leaves_polars_out(module: str) -> None:
    # GIVEN a fresh interpreter  WHEN the module is imported  THEN polars isn't
    assert heavy_modules_after(f"import {module}") == []


def test_the_config_loads_without_polars_unless_patterns_are_compiled() -> None:
    # GIVEN the repository's contracts file (it has patterns)
    load = (
        "from pathlib import Path\n"
        "from tasks.data_contracts.config import load_contracts\n"
        f"contracts = load_contracts(Path({str(CONTRACTS)!r}), compile_patterns={{}})\n"
        "assert any(c.pattern for k in contracts.contracts for c in k.columns)\n"
    )
    # WHEN it is loaded as Validate does  THEN polars stays out
    assert heavy_modules_after(load.format(False)) == []
    # ...and the full check (Convert, Batch) compiles the patterns with polars
    assert "polars" in heavy_modules_after(load.format(True))


def test_a_validate_invocation_with_contracts_leaves_polars_out() -> None:
    # GIVEN a cold Validate function with the repository's contracts, and a staged file one of
    # them matches
    invoke = (
        "import boto3\n"
        "from moto import mock_aws\n"
        "with mock_aws():\n"
        "    s3 = boto3.client('s3', region_name='us-east-1')\n"
        "    for bucket in ('staging', 'output'):\n"
        "        s3.create_bucket(Bucket=bucket)\n"
        "    key = 'partners/acme/orders/day.csv'\n"
        "    body = (b'order_id,customer_email,order_date,placed_at,'\n"
        "            b'quantity,unit_price,currency\\n')\n"
        "    s3.put_object(Bucket='staging', Key=key, Body=body)\n"
        "    head = s3.head_object(Bucket='staging', Key=key)\n"
        "    source = {'bucket': 'staging', 'key': key, 'size': len(body),\n"
        "              'eTag': head['ETag'].strip('\"')}\n"
        "    from tasks.validate import handler\n"
        "    plan = handler.handler({'source': source, 'execution': 'x'}, None)\n"
        "    assert plan['target']['contract'] == 'acme-orders', plan\n"
    )
    env = {
        "CHUTE_OUTPUT_BUCKET": "output",
        "CHUTE_CONTRACTS_FILE": str(CONTRACTS),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    # WHEN it validates the file (loading the contracts)  THEN polars was never imported
    assert heavy_modules_after(invoke, env) == []
