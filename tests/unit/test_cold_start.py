"""The tasks never import polars or pyarrow (~0.2 s of imports, and ~200 MB of the image): every
value is checked and written by the native core. Validate's cold start stays light too.

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


def test_the_config_loads_without_polars_whether_patterns_are_compiled_or_not() -> None:
    # GIVEN the repository's contracts file (it has patterns)
    load = (
        "from pathlib import Path\n"
        "from tasks.data_contracts.config import load_contracts\n"
        f"contracts = load_contracts(Path({str(CONTRACTS)!r}), compile_patterns={{}})\n"
        "assert any(c.pattern for k in contracts.contracts for c in k.columns)\n"
    )
    # WHEN it is loaded as Validate does  THEN polars stays out
    assert heavy_modules_after(load.format(False)) == []
    # ...nor when the full check (Convert, Batch) compiles the patterns (the native core)
    assert heavy_modules_after(load.format(True)) == []


def test_converting_under_a_contract_leaves_polars_and_pyarrow_out() -> None:
    # GIVEN the repository's acme-orders contract and a file it checks (one row dropped)
    convert = (
        "import io\n"
        "from pathlib import Path\n"
        "from tasks.convert.engine import EngineOptions, convert_stream\n"
        "from tasks.convert.typed import ContractTyping\n"
        "from tasks.data_contracts.config import load_contracts\n"
        f"contracts = load_contracts(Path({str(CONTRACTS)!r}))\n"
        "typing = ContractTyping(contracts.get('acme-orders'))\n"
        "data = (b'order_id,customer_email,order_date,placed_at,quantity,unit_price,currency\\n'\n"
        "        b'ORD-00000001,a@b.co,2026-01-02,2026-01-02T03:04:05Z,2,9.5,EUR\\n'\n"
        "        b'ORD-2,a@b.co,2026-01-02,2026-01-02T03:04:05Z,2,9.5,EUR\\n')\n"
        "out = {'jsonl': io.BytesIO().write, 'parquet': io.BytesIO().write}\n"
        "options = EngineOptions(outputs=('jsonl', 'parquet'), typing=typing)\n"
        "result = convert_stream(io.BytesIO(data), options, out, io.BytesIO().write)\n"
        "assert (result.rows, result.rejected_rows) == (1, 1), result\n"
    )
    # WHEN it is converted to JSON Lines and Parquet  THEN neither polars nor pyarrow was loaded
    assert heavy_modules_after(convert) == []


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
