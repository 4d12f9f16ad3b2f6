"""Step Functions' Distributed Map: a failed item fails the Map, as on AWS.

moto 5.2.5 runs a Distributed Map's items inside the parent execution but drops a failed item's
error: its result becomes null and the Map succeeds whatever ToleratedFailure* says. chute's
fan-out converts one file as many parts; a lost part must fail the Map
(``States.ExceedToleratedFailureThreshold``: chute tolerates no failed part), so the workflow's
Catch runs and the file is neither published nor lost.
"""

from __future__ import annotations

from typing import Any, cast

from moto.stepfunctions.parser.api import HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
    distributed_item_processor_worker as worker,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.program_state import ProgramError

from chute.local.moto_patches.seam import Fixes, Kind

FIXES = Fixes()

THRESHOLD = "States.ExceedToleratedFailureThreshold"


@FIXES.declare(
    "sfn-distributed-map-item-failure",
    Kind.BEHAVIOUR,
    worker.DistributedItemProcessorWorker,
    "_eval_job",
    why="a Distributed Map item that fails becomes null and the Map succeeds",
)
def _failed_item_fails_the_map(original: Any) -> Any:
    def eval_job(self: Any, env: Any, job: Any) -> None:
        original(self, env, job)
        # moto leaves a failed item's output None (the counters are shared by the workers,
        # so they can't tell which item failed); a Task's result is never None here: at least
        # its Lambda Payload, as chute's items are
        if job.job_output is not None and not isinstance(env.program_state(), ProgramError):
            return
        cause = f"an item of the Map failed (item {job.job_index}; no failure is tolerated)"
        job.job_output = FailureEventException(
            failure_event=FailureEvent(
                env=env,
                error_name=StatesErrorName(
                    typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold
                ),
                event_type=HistoryEventType.MapRunFailed,
                event_details=cast(
                    EventDetails,
                    {"mapRunFailedEventDetails": {"error": THRESHOLD, "cause": cause}},
                ),
            )
        )

    return eval_job
