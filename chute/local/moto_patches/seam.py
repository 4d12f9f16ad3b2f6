"""The seam between chute and moto: a :class:`Fix` replaces one attribute of moto with chute's
version, keeping the original (``revert()`` puts it back, tests compare the two), and ``HOOKS``
holds what the embedded runtime plugs into the hooks. Every other module of this package
declares its fixes with ``FIXES.declare`` right above the code they install.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # moto's service modules are imported after chute.local.moto_patches.imports
    from moto.awslambda.models import LambdaFunction
    from moto.batch.models import Job
    from moto.s3.models import S3Backend

LambdaExecutor = Callable[["LambdaFunction", Any], tuple[str, bool, str]]
BatchExecutor = Callable[["Job"], None]
RequestFilter = Callable[[dict[str, Any]], tuple[str, list[tuple[str, str]], bytes] | None]
Factory = TypeVar("Factory", bound=Callable[[Any], Any])


class ServiceFailure(Exception):
    """Raised by a hook when the service itself failed, not the caller's request or code (a
    Lambda worker that could not be started): moto answers it as the service's 500."""


MISSING: Any = object()
"""The original of a fix that adds what moto lacks (an API operation): reverting removes it."""


class Kind(enum.Enum):
    """What a fix is for."""

    HOOK = "hook"
    """Not a bug: chute's code runs where moto has no hook (Lambda, Batch, retries, requests)."""
    BEHAVIOUR = "behaviour"
    """moto differs from AWS in a way the pipeline depends on."""
    MEMORY = "memory"
    """moto holds whole object bodies in memory; the fix keeps the server's memory bounded."""
    SPEED = "speed"
    """The embedded runtime's own CPU per file (bench/throughput.py, docs/decisions.md)."""
    PERSISTENCE = "persistence"
    """A hook of chute.local.persistence, which keeps the runtime's data across restarts."""
    MOCK_CONFIG = "mock config"
    """Step Functions Local's MockConfigFile (docs/testing-workflows.md)."""
    REDRIVE = "redrive"
    """RedriveExecution, missing in moto (AWS semantics, docs/operating.md)."""

    @property
    def has_canary(self) -> bool:
        """Whether upstream could make a fix of this kind unneeded, so a canary test
        (``@pytest.mark.canary``) watches for it. Hooks run chute's own code inside moto
        (its workers, fault rules, state store): nothing upstream would change makes them
        unneeded."""
        return self not in (Kind.HOOK, Kind.PERSISTENCE)


@dataclass
class Fix:
    name: str
    kind: Kind
    why: str
    owner: Any
    attribute: str
    replacement_factory: Callable[[Any], Any]
    original: Any = field(default=None, init=False)
    applied: bool = field(default=False, init=False)

    def apply(self) -> None:
        if self.applied:
            return
        self.original = getattr(self.owner, self.attribute, MISSING)
        setattr(self.owner, self.attribute, self.replacement_factory(self.original))
        self.applied = True

    def revert(self) -> None:
        if self.applied:
            if self.original is MISSING:
                delattr(self.owner, self.attribute)
            else:
                setattr(self.owner, self.attribute, self.original)
            self.applied = False

    def current_original(self) -> Any:
        return self.original if self.applied else getattr(self.owner, self.attribute, MISSING)


class Fixes(list[Fix]):
    """One module's fixes, in the order they are declared: the order they are applied in (two
    fixes of the same attribute stack, the later one outside)."""

    def declare(
        self, name: str, kind: Kind, owner: Any, attribute: str, *, why: str
    ) -> Callable[[Factory], Factory]:
        """The decorated factory (original -> replacement) becomes fix ``name``, which replaces
        ``owner.attribute``. A factory serving several fixes is declared again by a call after
        its definition (``FIXES.declare(...)(factory)``), so they are read in applied order."""

        def declared(factory: Factory) -> Factory:
            self.append(Fix(name, kind, why, owner, attribute, factory))
            return factory

        return declared


class _Hooks:
    lambda_executor: LambdaExecutor | None = None
    batch_executor: BatchExecutor | None = None
    time_scale: float = 1.0
    object_written: Callable[[S3Backend, str, str], None] | None = None
    """(backend, bucket, key) after a request changed that key, before the response is sent."""
    bucket_written: Callable[[S3Backend, str], None] | None = None
    """(backend, bucket) after a request that may have changed any key of the bucket."""
    execution_started: Callable[[Any], None] | None = None
    execution_ended: Callable[[Any], None] | None = None
    request_filter: RequestFilter | None = None
    mock_config_file: Path | None = None
    """Step Functions Local's MockConfigFile for StartExecution on ``<arn>#<TestCase>``."""


HOOKS = _Hooks()
