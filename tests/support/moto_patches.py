"""Helpers of the tests of chute.local.moto_patches (tests/workflow/test_moto_patches_*.py, one
file per module): a fix reverted for a while, a probe bucket notifying a queue of its own, state
machines run to their end.

Each fix has a test that fails without it and, where upstream could make it unneeded (the fix's
``kind.has_canary``), a canary (``@pytest.mark.canary``) that fails once the pinned moto no longer
needs it: then delete the fix. They run against the embedded server, reverting one fix at a
time (the suite is sequential).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chute.local import moto_patches
from chute.local.embedded import EmbeddedAws
from tests.support.pipeline import wait_until


@contextmanager
def without(name: str) -> Iterator[None]:
    """Fix ``name`` reverted; fixes stacked on the same attribute after it (sfn-mock-config over
    sfn-unnamed-execution) are unwound first and stacked again after."""
    fixes = list(moto_patches.FIXES.values())
    fix = moto_patches.FIXES[name]
    above = [
        f
        for f in fixes[fixes.index(fix) + 1 :]
        if f.applied and (f.owner, f.attribute) == (fix.owner, fix.attribute)
    ]
    for f in reversed(above):
        f.revert()
    fix.revert()
    try:
        for f in above:
            f.apply()
        yield
    finally:
        for f in reversed(above):
            f.revert()
        fix.apply()
        for f in above:
            f.apply()


def make_probe(embedded: EmbeddedAws) -> dict[str, Any]:
    """A bucket notifying a queue of its own, and helpers, outside the pipeline's resources."""
    s3, sqs = embedded.client("s3"), embedded.client("sqs")
    s3.create_bucket(Bucket="probe-bucket")
    url = sqs.create_queue(QueueName="probe-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket="probe-bucket",
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return {"s3": s3, "sqs": sqs, "queue": url}


def drain(probe: dict[str, Any]) -> list[dict[str, Any]]:
    records = []
    while True:
        resp = probe["sqs"].receive_message(QueueUrl=probe["queue"], MaxNumberOfMessages=10)
        messages = resp.get("Messages", [])
        if not messages:
            return records
        for m in messages:
            records.extend(json.loads(m["Body"]).get("Records", []))
            probe["sqs"].delete_message(QueueUrl=probe["queue"], ReceiptHandle=m["ReceiptHandle"])


def multipart(s3: Any, key: str) -> None:
    upload = s3.create_multipart_upload(Bucket="probe-bucket", Key=key)
    part = s3.upload_part(
        Bucket="probe-bucket", Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"a,b\n"
    )
    s3.complete_multipart_upload(
        Bucket="probe-bucket",
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )


def event_names(probe: dict[str, Any]) -> list[str]:
    return [r["eventName"] for r in drain(probe)]


def machine(embedded: EmbeddedAws, name: str, definition: dict[str, Any]) -> str:
    sfn = embedded.client("stepfunctions")
    return str(
        sfn.create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=embedded.resources.role_arn
        )["stateMachineArn"]
    )


def finish(embedded: EmbeddedAws, arn: str, **kwargs: Any) -> dict[str, Any]:
    sfn = embedded.client("stepfunctions")
    execution_arn = sfn.start_execution(stateMachineArn=arn, **kwargs)["executionArn"]

    def finished() -> dict[str, Any] | None:
        desc = sfn.describe_execution(executionArn=execution_arn)
        return None if desc["status"] == "RUNNING" else desc

    return dict(wait_until(finished, what="execution finished"))


PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
