"""What differs between functions is read on a handler's first invocation, never at import: the
local runtime's template imports the handler modules once for every function's workers
(chute.local.lambda_runtime), and each function's settings, credentials and clients come from
its own environment (tasks.entry.per_container)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from chute.local import iam
from tasks import names

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, os, sys
from collections.abc import MutableMapping

read, listed = [], []

class Watched(MutableMapping):
    def __init__(self, real): self._real = real
    def __getitem__(self, key): read.append(key); return self._real[key]
    def __setitem__(self, key, value): self._real[key] = value
    def __delitem__(self, key): del self._real[key]
    def __iter__(self): listed.append(True); return iter(self._real)
    def __len__(self): return len(self._real)
    def __contains__(self, key): read.append(key); return key in self._real
    def copy(self): listed.append(True); return dict(self._real)

os.environ = Watched(os.environ)
import botocore.session

clients = []
real_create = botocore.session.Session.create_client
def create_client(self, service, *args, **kwargs):
    clients.append(service)
    return real_create(self, service, *args, **kwargs)
botocore.session.Session.create_client = create_client

def phase():
    result = {"read": sorted(set(read)), "listed": bool(listed), "clients": list(clients)}
    read.clear(); listed.clear(); clients.clear()
    return result

from chute.local import lambda_runtime
results = {}
lambda_runtime.preload()
results["template"] = phase()
for module in sys.argv[1:]:
    __import__(module)
    results[module] = phase()
print(json.dumps(results))
"""

LIBRARY_SWITCHES = {"PYTHON_ZSTANDARD_IMPORT_POLICY"}
"""Read at import by a library to choose its implementation (zstandard: C or cffi); no
function sets it."""

PER_FUNCTION = {
    *(name for settings in names.FUNCTION_SETTINGS.values() for name in settings),
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    iam.ENV_POLICY,
    iam.ENV_PRINCIPAL,
}
"""What the local runtime gives one function and not another."""


def probe(cwd: Path, modules: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *modules],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    results: dict[str, Any] = json.loads(done.stdout)
    return results


def test_handler_modules_read_nothing_of_their_environment_and_make_no_client_at_import() -> None:
    modules = sorted({handler.rpartition(".")[0] for handler in names.HANDLERS.values()})
    results = probe(REPO, modules)
    # the template's own imports and throwaway clients read no per-function setting (its
    # clients list the proxy variables, each for itself)
    assert results["template"]["clients"] == list(lambda_runtime_clients())
    assert not set(results["template"]["read"]) & PER_FUNCTION
    # each handler module, imported after them, reads nothing and makes no client
    eager = {
        m: r
        for m, r in results.items()
        if m != "template" and (set(r["read"]) - LIBRARY_SWITCHES or r["listed"] or r["clients"])
    }
    assert eager == {}


def test_the_probe_sees_a_module_that_reads_its_environment_or_makes_a_client(
    tmp_path: Path,
) -> None:
    # GIVEN a module that reads a variable and makes a client at import
    (tmp_path / "eager.py").write_text(
        "import os, boto3\n"
        "REGION = os.environ.get('AWS_REGION', 'us-east-1')\n"
        "CLIENT = boto3.client('s3', region_name=REGION)\n"
    )
    result = probe(tmp_path, ["eager"], env={"PATH": "", "PYTHONPATH": f"{tmp_path}:{REPO}"})
    # THEN both are seen
    assert "AWS_REGION" in result["eager"]["read"]
    assert result["eager"]["clients"] == ["s3"]


def lambda_runtime_clients() -> tuple[str, ...]:
    from chute.local.lambda_runtime import PRELOAD_CLIENTS

    return PRELOAD_CLIENTS
