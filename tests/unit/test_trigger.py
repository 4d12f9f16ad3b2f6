"""Trigger: SQS-wrapped S3 events -> idempotently named Step Functions executions."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import boto3
import pytest

from tasks import entry, log
from tasks.adapters.sfn import ExecutionStarter
from tasks.models import ModelError, ObjectRef
from tasks.settings import TriggerSettings
from tasks.trigger import handler as trigger_handler
from tasks.trigger.domain import Outcome, execution_name, handle_message, process_batch

EVENTS = Path(__file__).parent.parent / "fixtures" / "events"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
PASS_DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
FAKE_ROLE = "arn:aws:iam::123456789012:role/chute-state-machine"
SETTINGS = TriggerSettings(state_machine_arn="arn:unused", prefix="incoming/")


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def ref(**overrides: Any) -> ObjectRef:
    fields: dict[str, Any] = {
        "bucket": "chute-staging",
        "key": "incoming/orders.csv",
        "size": 10,
        "etag": "0123456789abcdef0123456789abcdef",
        "version_id": None,
        "sequencer": "0065F1A2B3C4D5E6F7",
    }
    fields.update(overrides)
    return ObjectRef(**fields)


class RecordingStarter:
    """A fake of our own port: remembers names, answers "exists" for a name seen before."""

    def __init__(self, fail_for_keys: tuple[str, ...] = ()) -> None:
        self.started: dict[str, dict[str, Any]] = {}
        self.fail_for_keys = fail_for_keys

    def start(self, name: str, payload: dict[str, Any]) -> Literal["started", "exists"]:
        if payload["source"]["key"] in self.fail_for_keys:
            raise RuntimeError("throttled")
        if name in self.started:
            return "exists"
        self.started[name] = payload
        return "started"

    @property
    def keys(self) -> list[str]:
        return [p["source"]["key"] for p in self.started.values()]


# --- execution_name -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key",
    [
        "incoming/orders.csv",
        "incoming/" + "very long file name " * 20 + ".csv",
        "incoming/déjà vu/DATA.CSV",
        "incoming/a+b=c (1) 100%.tsv.gz",
        "incoming/日本語のファイル.csv",
        "incoming/---___.csv",
        "incoming/%%%",
        "_leading underscore.csv",
    ],
)
def test_execution_name_is_short_safe_and_starts_with_an_alphanumeric(key: str) -> None:
    # WHEN a name is derived for any key  THEN Step Functions accepts it and logs stay clean
    name = execution_name(ref(key=key))
    assert len(name) <= 80
    assert NAME_RE.match(name), name


def test_execution_name_is_a_readable_slug_plus_a_32_char_hash() -> None:
    name = execution_name(ref(key="incoming/déjà vu/Monthly Report (2024).CSV"))
    slug, digest = name.rsplit("-", 1)
    assert slug == "Monthly-Report-2024-CSV"
    assert re.fullmatch(r"[0-9a-f]{32}", digest)


def test_execution_name_truncates_long_file_names_to_fit_80_chars() -> None:
    name = execution_name(ref(key="in/" + "x" * 500 + ".csv"))
    assert len(name) == 80
    assert name.startswith("x" * 40)


def test_execution_name_falls_back_when_the_file_name_has_nothing_readable() -> None:
    assert execution_name(ref(key="in/---")).startswith("object-")
    assert execution_name(ref(key="in/日本語.csv")).startswith("csv-")


def test_execution_name_is_deterministic() -> None:
    # GIVEN the same event delivered twice  THEN both deliveries get the same name
    assert execution_name(ref()) == execution_name(ref())
    assert execution_name(ref(size=999)) == execution_name(ref()), "size is not identity"


@pytest.mark.parametrize(
    "change",
    [
        {"bucket": "other-bucket"},
        {"key": "incoming/orders2.csv"},
        {"key": "other/orders.csv"},
        {"etag": "ffffffffffffffffffffffffffffffff"},
        {"sequencer": "0065F1A2B3C4D5E6F8"},
        {"version_id": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"},
    ],
)
def test_execution_name_differs_for_another_object_or_version(change: dict[str, Any]) -> None:
    assert execution_name(ref(**change)) != execution_name(ref())


def test_execution_name_uses_the_version_id_before_the_etag() -> None:
    # GIVEN a versioned object  THEN its version identifies it (the eTag adds nothing)
    a = ref(version_id="v1", etag="aaaa")
    b = ref(version_id="v1", etag="bbbb")
    assert execution_name(a) == execution_name(b)
    assert execution_name(ref(version_id="v1")) != execution_name(ref(version_id="v2"))


def test_execution_name_cannot_be_confused_by_separators_in_fields() -> None:
    # GIVEN fields whose concatenation would be equal  THEN the names still differ
    a = ref(bucket="ab", key="c/x.csv")
    b = ref(bucket="a", key="bc/x.csv")
    assert execution_name(a) != execution_name(b)


# --- parsing S3 records ------------------------------------------------------------------------
def test_keys_are_decoded_as_s3_encodes_them() -> None:
    # GIVEN records whose keys S3 form-encoded (space "+", plus "%2B", "%" "%25", UTF-8)
    starter = RecordingStarter()
    event = load_event("sqs_s3_multiple_records.json")

    # WHEN the first message is handled
    outcomes = handle_message(event["Records"][0]["body"], starter, SETTINGS)

    # THEN every key is decoded exactly and each started one execution
    assert [o.status for o in outcomes] == ["started"] * 3
    assert starter.keys == [
        "incoming/a+b=c.tsv",
        "incoming/déjà vu/DATA.CSV",
        "incoming/100% done.csv.gz",
    ]


def test_ignored_records_start_nothing_and_say_why() -> None:
    # GIVEN a folder marker, a .md, an ObjectRemoved event and a key outside the prefix
    starter = RecordingStarter()
    event = load_event("sqs_s3_multiple_records.json")

    # WHEN the message is handled
    outcomes = handle_message(event["Records"][1]["body"], starter, SETTINGS)

    # THEN nothing starts and each record is ignored with its reason
    assert starter.started == {}
    assert [(o.status, o.key, o.reason) for o in outcomes] == [
        ("ignored", "incoming/new folder/", "folder marker"),
        ("ignored", "incoming/readme.md", f"suffix not in {', '.join(SETTINGS.suffixes)}"),
        ("ignored", "incoming/old.csv", "event ObjectRemoved:Delete is not ObjectCreated"),
        ("ignored", "elsewhere/other.csv", "key is outside prefix 'incoming/'"),
    ]


def test_s3_test_event_is_ignored() -> None:
    event = load_event("sqs_s3_test_event.json")
    outcomes = handle_message(event["Records"][0]["body"], RecordingStarter(), SETTINGS)
    assert outcomes == [Outcome("ignored", reason="s3:TestEvent")]


def test_the_started_execution_gets_the_object_ref_of_the_event() -> None:
    # GIVEN a put of a versioned object
    starter = RecordingStarter()
    body = load_event("sqs_s3_put.json")["Records"][0]["body"]

    # WHEN handled
    [outcome] = handle_message(body, starter, SETTINGS)

    # THEN the execution input is {"source": ObjectRef} with every identity field of the event
    expected = ObjectRef(
        bucket="chute-staging",
        key="incoming/monthly report (2024).csv",
        size=2048,
        etag="9b2cf535f27731c974343645a3985328",
        version_id="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        sequencer="0055AED6DCD90281E5",
        uploaded="2024-03-14T09:26:53.589Z",  # the event's time: orders uploads of two keys
    )
    assert outcome == Outcome(
        "started", bucket=expected.bucket, key=expected.key, execution=execution_name(expected)
    )
    assert starter.started == {execution_name(expected): {"source": expected.to_dict()}}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (None, "message body is missing or not a string"),
        ("{not json", "message body is not JSON"),
        ("[1, 2]", "message body is not a JSON object"),
        ('{"hello": "world"}', "message body is not an S3 event (no Records list)"),
        ('{"Records": ["x"]}', "malformed S3 record: record is not an object"),
        (
            '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}}}]}',
            "malformed S3 record: record has no s3.bucket / s3.object",
        ),
        (
            '{"Records": [{"eventName": "ObjectCreated:Put",'
            ' "s3": {"bucket": {"name": "b"}, "object": {"key": "incoming/x.csv"}}}]}',
            "malformed S3 record: missing or invalid field 'size'",
        ),
    ],
)
def test_unreadable_bodies_and_records_fail_with_a_reason(body: Any, reason: str) -> None:
    [outcome] = handle_message(body, RecordingStarter(), SETTINGS)
    assert outcome.status == "failed"
    assert outcome.reason.startswith(reason)


def test_a_failed_start_does_not_stop_the_other_records_of_the_message() -> None:
    # GIVEN a message with three objects, the second of which can't be started
    starter = RecordingStarter(fail_for_keys=("incoming/déjà vu/DATA.CSV",))
    body = load_event("sqs_s3_multiple_records.json")["Records"][0]["body"]

    # WHEN handled
    outcomes = handle_message(body, starter, SETTINGS)

    # THEN the others start, and the failure carries its reason
    assert [o.status for o in outcomes] == ["started", "failed", "started"]
    assert outcomes[1].reason == "StartExecution failed: RuntimeError: throttled"


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, dict[str, Any]]]:
    """(level, message, fields) of every line the trigger logs."""
    lines: list[tuple[str, str, dict[str, Any]]] = []
    for level in ("info", "error"):
        monkeypatch.setattr(log, level, lambda msg, _lvl=level, **kw: lines.append((_lvl, msg, kw)))
    return lines


def test_process_batch_logs_every_outcome(logged: list[tuple[str, str, dict[str, Any]]]) -> None:
    # GIVEN a batch whose middle record has a bad body
    event = load_event("sqs_s3_with_bad_body.json")

    # WHEN processed
    process_batch(event["Records"], RecordingStarter(), SETTINGS)

    # THEN each record has one line, with its messageId, and the failure its reason
    assert [(lvl, msg) for lvl, msg, _ in logged] == [
        ("info", "execution started"),
        ("error", "record failed"),
        ("info", "execution started"),
    ]
    assert [fields["message_id"] for _, _, fields in logged] == [
        r["messageId"] for r in event["Records"]
    ]
    assert logged[1][2]["reason"].startswith("message body is not JSON")


def test_a_record_without_message_id_fails_the_whole_invocation() -> None:
    event = load_event("sqs_s3_put.json")
    del event["Records"][0]["messageId"]
    with pytest.raises(ModelError):
        process_batch(event["Records"], RecordingStarter(), SETTINGS)


# --- the handler against a real (moto) state machine --------------------------------------------
@pytest.fixture
def sfn(aws: None) -> Any:
    return boto3.client("stepfunctions")


@pytest.fixture
def state_machine(sfn: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    arn: str = sfn.create_state_machine(
        name="chute-pipeline", definition=PASS_DEFINITION, roleArn=FAKE_ROLE
    )["stateMachineArn"]
    monkeypatch.setenv("CHUTE_STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("CHUTE_PREFIX", "incoming/")
    monkeypatch.delenv("CHUTE_SUFFIXES", raising=False)
    _clear_handler_caches()
    yield arn
    _clear_handler_caches()


def _clear_handler_caches() -> None:
    entry.reset()


def executions(sfn: Any, arn: str) -> dict[str, dict[str, Any]]:
    """name -> execution input, for every execution of the state machine."""
    out = {}
    for item in sfn.list_executions(stateMachineArn=arn)["executions"]:
        described = sfn.describe_execution(executionArn=item["executionArn"])
        out[item["name"]] = json.loads(described["input"])
    return out


def test_handler_starts_one_execution_per_put(sfn: Any, state_machine: str) -> None:
    # GIVEN an SQS event carrying one S3 put
    event = load_event("sqs_s3_put.json")

    # WHEN the trigger handles it
    result = trigger_handler.handler(event, None)

    # THEN one execution runs with the decoded key, and no record failed
    assert result == {"batchItemFailures": []}
    [(name, payload)] = executions(sfn, state_machine).items()
    assert payload["source"]["key"] == "incoming/monthly report (2024).csv"
    assert name == execution_name(ObjectRef.from_dict(payload["source"]))


def test_handler_starts_multipart_uploads_with_their_size(sfn: Any, state_machine: str) -> None:
    result = trigger_handler.handler(load_event("sqs_s3_multipart.json"), None)

    assert result == {"batchItemFailures": []}
    [payload] = executions(sfn, state_machine).values()
    assert payload == {
        "source": {
            "bucket": "chute-staging",
            "key": "incoming/big/orders 2024-Q1.csv.gz",
            "size": 6_442_450_944,
            "eTag": "d41d8cd98f00b204e9800998ecf8427e-769",
            "sequencer": "0065F1B0C2D3E4F5A6",
            "uploaded": "2024-03-14T09:26:53.589Z",
        }
    }


def test_handler_ignores_test_events_and_unwanted_keys(sfn: Any, state_machine: str) -> None:
    # GIVEN a test event, and a message of keys that are all to be ignored
    test_event = load_event("sqs_s3_test_event.json")
    ignored = load_event("sqs_s3_multiple_records.json")
    ignored["Records"] = ignored["Records"][1:]

    # WHEN handled  THEN nothing starts and nothing fails
    assert trigger_handler.handler(test_event, None) == {"batchItemFailures": []}
    assert trigger_handler.handler(ignored, None) == {"batchItemFailures": []}
    assert executions(sfn, state_machine) == {}


def test_handler_starts_every_record_of_every_message(sfn: Any, state_machine: str) -> None:
    result = trigger_handler.handler(load_event("sqs_s3_multiple_records.json"), None)

    assert result == {"batchItemFailures": []}
    keys = sorted(p["source"]["key"] for p in executions(sfn, state_machine).values())
    assert keys == [
        "incoming/100% done.csv.gz",
        "incoming/a+b=c.tsv",
        "incoming/déjà vu/DATA.CSV",
    ]


def test_duplicate_delivery_after_the_execution_ended_is_exists_not_a_failure(
    sfn: Any, state_machine: str, logged: list[tuple[str, str, dict[str, Any]]]
) -> None:
    # GIVEN an event whose execution already ran (stopped here, which closes it like an end)
    event = load_event("sqs_s3_put.json")
    trigger_handler.handler(event, None)
    [first] = sfn.list_executions(stateMachineArn=state_machine)["executions"]
    sfn.stop_execution(executionArn=first["executionArn"])

    # WHEN SQS delivers the same event again
    result = trigger_handler.handler(copy.deepcopy(event), None)

    # THEN StartExecution answered "exists" (ExecutionAlreadyExists), which counts as done
    assert result == {"batchItemFailures": []}
    assert len(executions(sfn, state_machine)) == 1
    assert [msg for _, msg, _ in logged] == ["execution started", "execution already exists"]
    assert logged[1][2]["execution"] == first["name"]


def test_execution_starter_answers_exists_for_a_used_name(sfn: Any, state_machine: str) -> None:
    # GIVEN an ended execution
    starter = ExecutionStarter(state_machine)
    payload = {"source": ref().to_dict()}
    assert starter.start("orders-csv-0123", payload) == "started"
    [first] = sfn.list_executions(stateMachineArn=state_machine)["executions"]
    sfn.stop_execution(executionArn=first["executionArn"])

    # WHEN the same name is started again  THEN "exists", not an error
    assert starter.start("orders-csv-0123", payload) == "exists"


def test_duplicate_delivery_while_the_execution_runs_is_not_a_failure(
    sfn: Any, state_machine: str, logged: list[tuple[str, str, dict[str, Any]]]
) -> None:
    # GIVEN an event whose execution is still RUNNING
    event = load_event("sqs_s3_put.json")
    trigger_handler.handler(event, None)

    # WHEN the same event comes again
    result = trigger_handler.handler(event, None)

    # THEN still one execution and no failure. Standard workflows answer a repeated name + input
    # with the running execution (success), not ExecutionAlreadyExists; moto does the same.
    assert result == {"batchItemFailures": []}
    assert len(executions(sfn, state_machine)) == 1
    assert [msg for _, msg, _ in logged] == ["execution started", "execution started"]


def test_only_the_bad_record_is_reported_as_a_batch_item_failure(
    sfn: Any, state_machine: str
) -> None:
    # GIVEN three SQS records, the middle one with an unparseable body
    event = load_event("sqs_s3_with_bad_body.json")
    bad_id = event["Records"][1]["messageId"]

    # WHEN handled
    result = trigger_handler.handler(event, None)

    # THEN only the bad one is redelivered; the good ones started
    assert result == {"batchItemFailures": [{"itemIdentifier": bad_id}]}
    keys = sorted(p["source"]["key"] for p in executions(sfn, state_machine).values())
    assert keys == ["incoming/first.csv", "incoming/third.csv"]


def test_start_errors_fail_the_records_that_needed_a_start(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a state machine that does not exist (StartExecution raises StateMachineDoesNotExist)
    monkeypatch.setenv(
        "CHUTE_STATE_MACHINE_ARN",
        "arn:aws:states:us-east-1:123456789012:stateMachine:missing",
    )
    monkeypatch.setenv("CHUTE_PREFIX", "incoming/")
    _clear_handler_caches()
    event = load_event("sqs_s3_multiple_records.json")

    # WHEN a message that needs starts and one that only holds ignored records are handled
    result = trigger_handler.handler(event, None)
    _clear_handler_caches()

    # THEN only the first is redelivered
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}


def test_handler_rejects_an_event_that_is_not_from_sqs(state_machine: str) -> None:
    with pytest.raises(ModelError):
        trigger_handler.handler({"detail-type": "Object Created"}, None)


def test_moto_s3_notifications_through_sqs_start_one_execution_per_object(
    sfn: Any, state_machine: str
) -> None:
    # GIVEN a staging bucket notifying a queue, as deployed
    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="chute-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.create_bucket(Bucket="chute-staging")
    s3.put_bucket_notification_configuration(
        Bucket="chute-staging",
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )

    # WHEN a client puts one file and multipart-uploads another (moto then sends a test event,
    # the put, and both a Put and a CompleteMultipartUpload event for the multipart upload)
    s3.put_object(Bucket="chute-staging", Key="incoming/a b+c/DÉJÀ (1).CSV", Body=b"x\n")
    upload = s3.create_multipart_upload(Bucket="chute-staging", Key="incoming/big file.tsv")
    part = s3.upload_part(
        Bucket="chute-staging",
        Key="incoming/big file.tsv",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"a\tb\n",
    )
    s3.complete_multipart_upload(
        Bucket="chute-staging",
        Key="incoming/big file.tsv",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    event = {
        "Records": [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
            for m in messages
        ]
    }
    result = trigger_handler.handler(event, None)

    # THEN every message is handled and each object has exactly one execution
    assert len(messages) == 4
    assert result == {"batchItemFailures": []}
    keys = sorted(p["source"]["key"] for p in executions(sfn, state_machine).values())
    assert keys == ["incoming/a b+c/DÉJÀ (1).CSV", "incoming/big file.tsv"]
