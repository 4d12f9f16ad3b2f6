"""Every change chute makes to moto (pinned exactly in pyproject.toml), the embedded engine, by
the service it patches. moto has no hooks to run our own code for Lambda invocations or Batch
jobs, and a few behaviours differ from AWS in ways the pipeline depends on. Each change is a
:class:`Fix` declared right above the code it installs, with its :class:`Kind` (hook,
behaviour, memory, speed, persistence, mock config, redrive):

- seam: ``Fix``, ``Kind``, ``HOOKS`` (what the embedded runtime plugs in)
- imports: what moto does while it is imported (every region's EC2 offerings, whole service
  models read for a region list), applied before moto's service modules are imported
- lambda_and_batch: our Lambda workers and Batch jobs in moto's place; DescribeJobs exit code
- server: the request filter of injected faults; the dispatcher's service lookup, cached
- s3: events, conditional writes, the persistence hooks of objects
- s3_bodies: object bodies in files, streamed in chunks (bounded memory)
- stepfunctions: the interpreter's behaviour, speed and execution hooks
- distributed_map: a failed item of a Distributed Map fails the Map
- events: EventBridge's input template paths parsed once
- mock_configs: Step Functions Local's MockConfigFile
- redrive: RedriveExecution, and the record of an execution of an earlier run
- registry: ``FIXES`` by name, ``apply_all`` / ``revert_all``

A fix upstream could make unneeded has a canary (tests/workflow, ``@pytest.mark.canary``): a
test of moto without the fix that fails once the pinned version no longer needs it; then delete
the fix. Hooks have none (``Kind.has_canary``).
"""

from chute.local.moto_patches.imports import apply_before_moto_imports

apply_before_moto_imports()  # before the modules below import moto's services

from chute.local.moto_patches.registry import FIXES, apply_all, revert_all  # noqa: E402
from chute.local.moto_patches.seam import HOOKS, Fix, Kind  # noqa: E402

__all__ = ["FIXES", "HOOKS", "Fix", "Kind", "apply_all", "revert_all"]
