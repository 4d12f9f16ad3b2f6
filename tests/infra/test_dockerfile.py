"""The root Dockerfile and .dockerignore, checked without Docker (no engine or registry here).

One image serves the Batch job (its default CMD) and every Lambda function (entrypoint
``python -m awslambdaric``, cmd = the handler path, set by the CDK app).
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from chute.local.embedded import EmbeddedAws
from chute.local.local_stack import LocalStack
from tasks import names

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
NATIVE_TARGET = REPO_ROOT / "native" / "target"

# An exact version tag: major.minor.patch, an optional variant, an optional digest.
PINNED_IMAGE = re.compile(
    r"^(?P<repo>[\w.\-/:]+?):(?P<version>\d+\.\d+\.\d+)(?P<variant>-[\w.\-]+)?"
    r"(?:@sha256:[0-9a-f]{64})?$"
)
# Must never reach the build context (and so the DockerImageAsset's fingerprint).
NEVER_IN_CONTEXT = (
    ".venv/bin/python",
    "node_modules/aws-cdk/package.json",
    "cdk.out/manifest.json",
    ".git/HEAD",
    "tests/unit/test_archive.py",
    "samples/orders.csv",
    "docs/step-events.md",
    "chute-out/samples/orders.csv.jsonl",
    ".chute/logs/worker.log",
    ".mypy_cache/3.11/tasks.json",
    ".pytest_cache/README.md",
    ".ruff_cache/CACHEDIR.TAG",
    "infra/app.py",
    "chute/cli/__init__.py",
    "chute.egg-info/PKG-INFO",
    "build/lib/tasks/__init__.py",
    "tasks/__pycache__/names.cpython-311.pyc",
    "tasks/archive/__pycache__/domain.cpython-311.pyc",
    "batch/entrypoint.pyc",
    "native/target/release/libchute_native.so",
)


# --- a small Dockerfile reader ------------------------------------------------------------------
@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def instructions(text: str) -> list[Instruction]:
    """Logical instructions: comments dropped, ``\\`` continuations joined."""
    out: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation"
    return out


@pytest.fixture(scope="module")
def steps() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text(encoding="utf-8"))


def of(steps: list[Instruction], keyword: str) -> list[Instruction]:
    return [s for s in steps if s.keyword == keyword]


def env(steps: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for step in of(steps, "ENV"):
        words = shlex.split(step.args)
        if "=" not in words[0]:  # legacy form: ENV KEY value
            values[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            key, _, value = word.partition("=")
            values[key] = value
    return values


def copy_sources(steps: list[Instruction]) -> list[str]:
    """Every source path of every COPY/ADD from the build context (not ``--from`` a stage)."""
    sources: list[str] = []
    for step in of(steps, "COPY") + of(steps, "ADD"):
        words = json.loads(step.args) if step.args.startswith("[") else shlex.split(step.args)
        if any(w.startswith("--from") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        sources.extend(words[:-1])
    return sources


# --- a .dockerignore matcher (Docker's rules: last matching pattern wins, ! re-includes,
#     a pattern that matches a parent directory matches everything below it) ---------------------
def _regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            out += ".*" if i >= len(pattern) else "(.*/)?"
            continue
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(f"^{out}$")


def ignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line[1:].strip() if negated else line
        pattern = pattern.strip("/")  # Docker cleans "/tasks/" to "tasks"
        assert "[" not in pattern and "\\" not in pattern, "matcher supports * ** ? only"
        # (so the context walk below may skip excluded directories)
        assert not (negated and "/" in pattern), "re-includes below the top level unsupported"
        rules.append((negated, _regex(pattern)))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    matched = False
    for negated, regex in rules:
        if any(regex.match(c) for c in candidates):
            matched = not negated
    return matched


@pytest.fixture(scope="module")
def rules() -> list[tuple[bool, re.Pattern[str]]]:
    return ignore_rules(DOCKERIGNORE.read_text(encoding="utf-8"))


def test_the_matcher_follows_dockers_rules() -> None:
    rules = ignore_rules("*\n!keep/\n**/__pycache__\n")
    assert excluded("anything", rules)
    assert excluded("deep/er/file", rules)
    assert not excluded("keep/a.py", rules)
    assert excluded("keep/x/__pycache__/a.pyc", rules)


# --- the image -----------------------------------------------------------------------------------
def test_base_image_is_pinned_to_an_exact_python_311_tag(steps: list[Instruction]) -> None:
    *builders, base = of(steps, "FROM")  # the image is the last stage
    for stage in [*builders, base]:
        image = stage.args.split()[0]
        assert PINNED_IMAGE.match(image), f"{image}: not pinned to an exact major.minor.patch tag"
        assert "latest" not in image
    match = PINNED_IMAGE.match(base.args.split()[0])
    assert match
    assert match["version"].startswith("3.11."), "the project targets Python 3.11 (pyproject)"


def test_the_native_core_is_built_in_a_builder_stage_and_installed(
    steps: list[Instruction],
) -> None:
    # GIVEN the builder stage (a Rust image) and the image's stage
    [builder] = [s for s in of(steps, "FROM") if s.args.split()[-1] == "native"]
    rust = PINNED_IMAGE.match(builder.args.split()[0])
    assert rust and rust["repo"].endswith("/rust")
    # THEN its Rust is the toolchain native/rust-toolchain.toml pins
    toolchain = tomllib.loads((REPO_ROOT / "native" / "rust-toolchain.toml").read_text())
    assert rust["version"] == toolchain["toolchain"]["channel"]
    # AND it builds the wheel from the locked crates, the image copies and installs it
    runs = " ".join(s.args for s in of(steps, "RUN"))
    assert re.search(r"maturin build --release --locked .*--manifest-path native/Cargo.toml", runs)
    assert any(s.args.startswith("--from=native /wheels/") for s in of(steps, "COPY"))
    assert re.search(r"pip install -c constraints\.txt \S+ /tmp/wheels/chute_native-\*\.whl", runs)


def test_python_and_pip_environment(steps: list[Instruction]) -> None:
    values = env(steps)
    assert values["PYTHONUNBUFFERED"] == "1"  # logs reach CloudWatch as they are written
    assert values["PYTHONDONTWRITEBYTECODE"] == "1"
    assert values["PIP_NO_CACHE_DIR"] in {"1", "true", "on", "yes"}


def test_runs_as_a_fixed_non_root_uid_after_every_install(steps: list[Instruction]) -> None:
    users = of(steps, "USER")
    assert users, "no USER: the container would run as root"
    uid = users[-1].args.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1].args}: want a numeric non-root uid"
    last_run = max(i for i, s in enumerate(steps) if s.keyword == "RUN")
    assert steps.index(users[-1]) > last_run, "USER must come after the installs"


def test_default_command_is_the_batch_job_command(steps: list[Instruction]) -> None:
    assert not of(steps, "ENTRYPOINT"), "Batch can override CMD, never ENTRYPOINT"
    [cmd] = of(steps, "CMD")
    assert cmd.args.startswith("["), "CMD must be the JSON exec form (no shell, signals reach it)"
    assert json.loads(cmd.args) == list(names.BATCH_COMMAND)


def test_the_project_and_the_lambda_runtime_client_are_installed_locked(
    steps: list[Instruction],
) -> None:
    runs = " ".join(s.args for s in of(steps, "RUN"))
    assert re.search(r"pip install (?:\S+ )*-c constraints\.txt \"?\.\[lambda\]\"?", runs)
    lock = (REPO_ROOT / "constraints.txt").read_text().splitlines()
    assert any(re.fullmatch(r"awslambdaric==\d+\.\d+\.\d+", line) for line in lock)


# --- the build context -----------------------------------------------------------------------
def test_every_copied_path_exists_and_is_in_the_context(
    steps: list[Instruction], rules: list[tuple[bool, re.Pattern[str]]]
) -> None:
    sources = copy_sources(steps)
    assert sources
    for source in sources:
        path = REPO_ROOT / source
        assert path.exists(), f"COPY {source}: no such path"
        files = (
            [path]
            if path.is_file()
            else [
                p
                for p in path.rglob("*")
                if p.is_file()
                and "__pycache__" not in p.parts
                and p.suffix != ".pyc"
                and not p.is_relative_to(NATIVE_TARGET)  # cargo's output (kept out: see above)
            ]
        )
        assert files, f"COPY {source}: nothing to copy"
        for file in files:
            relative = file.relative_to(REPO_ROOT).as_posix()
            assert not excluded(relative, rules), f"{relative} is copied but .dockerignore drops it"


def test_what_the_image_needs_is_copied(steps: list[Instruction]) -> None:
    copied = {s.strip("/") for s in copy_sources(steps)}
    # pyproject names README.md as its readme; the tasks and the Batch entrypoint are the code
    assert {"pyproject.toml", "constraints.txt", "README.md", "tasks", "batch"} <= copied
    for path in names.HANDLERS.values():
        assert path.split(".")[0] in copied, f"{path}: its package is not in the image"
    assert names.BATCH_COMMAND[-1] in copied
    assert "chute" not in copied and "." not in copied, "the CLI and local runtime stay out"


@pytest.mark.parametrize("path", NEVER_IN_CONTEXT)
def test_dockerignore_keeps_out(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> None:
    assert excluded(path, rules)


def test_only_copied_paths_reach_the_context(
    steps: list[Instruction], rules: list[tuple[bool, re.Pattern[str]]]
) -> None:
    copied = {s.strip("/") for s in copy_sources(steps)}
    in_context = {p.name for p in REPO_ROOT.iterdir() if not excluded(p.name, rules)}
    assert in_context <= copied | {"Dockerfile", ".dockerignore"}


# --- the embedded runtime registers the same command --------------------------------------------
class RecordingBatch:
    def __init__(self) -> None:
        self.job_definitions: list[dict[str, Any]] = []

    def create_compute_environment(self, **kwargs: Any) -> dict[str, str]:
        return {"computeEnvironmentArn": "arn:aws:batch:us-east-1:123456789012:ce/local"}

    def create_job_queue(self, **kwargs: Any) -> dict[str, str]:
        return {}

    def register_job_definition(self, **kwargs: Any) -> dict[str, str]:
        self.job_definitions.append(kwargs)
        return {}


def test_embedded_job_definition_runs_the_image_cmd(
    steps: list[Instruction], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the embedded runtime's local stack, with a Batch client that records what it is asked
    # to create
    embedded = EmbeddedAws()
    batch = RecordingBatch()
    stack = LocalStack(lambda service: batch, embedded.resources, embedded.settings)

    # WHEN it creates the Batch resources
    values = {name: "1" for name in names.FUNCTION_SETTINGS["convert"]}
    stack._create_batch(values)

    # THEN the job definition's command is the Dockerfile's CMD
    [definition] = batch.job_definitions
    [cmd] = of(steps, "CMD")
    assert definition["containerProperties"]["command"] == json.loads(cmd.args)


def test_embedded_job_command_comes_from_the_shared_constant() -> None:
    # A literal that happens to match today would drift; the source must use names.BATCH_COMMAND.
    source = textwrap.dedent(inspect.getsource(LocalStack._create_batch))
    commands = [
        ast.unparse(value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Dict)
        for key, value in zip(node.keys, node.values, strict=True)
        if isinstance(key, ast.Constant) and key.value == "command"
    ]
    assert commands == ["list(names.BATCH_COMMAND)"]


# --- the install step works on exactly the build context ----------------------------------------
@pytest.fixture(scope="module")
def context(
    tmp_path_factory: pytest.TempPathFactory, rules: list[tuple[bool, re.Pattern[str]]]
) -> Path:
    """A copy of the build context as Docker would send it (.dockerignore applied)."""
    root = tmp_path_factory.mktemp("context")
    for directory, subdirs, files in os.walk(REPO_ROOT):
        relative = Path(directory).relative_to(REPO_ROOT)
        subdirs[:] = [d for d in subdirs if not excluded((relative / d).as_posix(), rules)]
        for name in files:
            if not excluded((relative / name).as_posix(), rules):
                (root / relative).mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(directory) / name, root / relative / name)
    return root


def find_packages(root: Path, include: list[str]) -> set[str]:
    """setuptools' ``packages.find`` (regular packages): directories with an ``__init__.py``
    below a package or the root, whose dotted name matches an include pattern."""
    packages: set[str] = set()
    for init in sorted(root.rglob("__init__.py"), key=lambda p: len(p.parts)):
        dotted = init.parent.relative_to(root).as_posix().replace("/", ".")
        parent = dotted.rpartition(".")[0]
        if (not parent or parent in packages) and any(fnmatch(dotted, i) for i in include):
            packages.add(dotted)
    return packages


def test_package_discovery_finds_every_module_in_the_context(context: Path) -> None:
    # GIVEN pyproject's package discovery (chute*, tasks*, batch*) run on the build context
    pyproject = tomllib.loads((context / "pyproject.toml").read_text(encoding="utf-8"))
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = find_packages(context, include)

    # THEN every module copied is in a package the wheel gets, and chute/ (not copied) is not
    modules = {
        p.relative_to(context).parent.as_posix().replace("/", ".") for p in context.rglob("*.py")
    }
    assert modules <= packages, f"not packages (missing __init__.py?): {modules - packages}"
    assert {p.split(".")[0] for p in packages} == {"tasks", "batch"}


def test_the_context_builds_a_wheel(context: Path, tmp_path: Path) -> None:
    # The Dockerfile's `pip install .`, minus dependencies. Build isolation fetches the build
    # backend from the package index, as the image build does.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), "./"],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    offline = ("NewConnectionError", "Network is unreachable", "No matching distribution")
    if result.returncode != 0 and any(word in result.stderr for word in offline):
        pytest.skip("no package index to fetch the build backend from")
    assert result.returncode == 0, result.stderr
    [wheel] = tmp_path.glob("chute-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
    for path in names.HANDLERS.values():
        module = path.rpartition(".")[0]
        assert module.replace(".", "/") + ".py" in files
    assert "batch/__main__.py" in files
    assert not any(f.startswith("chute/") for f in files)
