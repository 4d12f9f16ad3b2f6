"""The process a local Lambda worker runs: ``python -m chute.local.lambda_runtime HANDLER``.

Like Lambda's runtime interface: imports the handler once (cold start), then serves invocations
one at a time. Requests arrive as JSON lines on stdin; each response is one JSON line on the file
descriptor named by ``CHUTE_RUNTIME_FD`` (stdout/stderr stay free for the handler's logs).
An exception is reported as ``{"errorType": <class name>, "errorMessage": ...}``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class Context:
    """The parts of the Lambda context object handlers use."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.invoked_function_arn = (
            f"arn:aws:lambda:local:000000000000:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def serve(handler_path: str, requests: Any, responses: Any) -> None:
    module_name, _, func_name = handler_path.rpartition(".")
    handler = getattr(importlib.import_module(module_name), func_name)
    for line in requests:
        request = json.loads(line)
        context = Context(request["requestId"], request["deadlineMs"])
        try:
            result = handler(request["event"], context)
            response = {"ok": True, "payload": json.dumps(result)}
        except Exception as exc:
            traceback.print_exc()
            error = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "requestId": request["requestId"],
                "stackTrace": traceback.format_exception(exc)[-5:],
            }
            response = {"ok": False, "payload": json.dumps(error)}
        responses.write(json.dumps(response) + "\n")
        responses.flush()


def main() -> None:
    fd = int(os.environ.pop("CHUTE_RUNTIME_FD"))
    from chute.local import iam  # the function's role, as the stack has it (chute.local.iam)

    iam.install_from_environment()
    with os.fdopen(fd, "w", encoding="utf-8") as responses:
        serve(sys.argv[1], sys.stdin, responses)


if __name__ == "__main__":
    main()
