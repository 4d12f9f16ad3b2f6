"""The properties of the synthesized stack that matter (never hashed logical IDs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import assertions
from constructs import IConstruct

from chute.local.embedded import EmbeddedAws, LocalSettings
from chute.local.local_stack import WORKFLOW_FILE
from infra.config import ChuteProps
from tasks import names
from tasks.formats import keys
from tests.support.synth import Synth, dumps

Match = assertions.Match


def _statements(synth: Synth, role_fragment: str) -> list[dict[str, Any]]:
    """Every policy statement attached to roles whose logical id contains the fragment."""
    found = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        roles = dumps(policy["Properties"].get("Roles", []))
        if role_fragment in roles:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    actions: set[str] = set()
    for st in statements:
        value = st["Action"]
        actions.update([value] if isinstance(value, str) else value)
    return actions


# --- storage ------------------------------------------------------------------------------------
def test_every_bucket_is_private_encrypted_and_tls_only(synth: Synth) -> None:
    buckets = synth.resources("AWS::S3::Bucket")
    assert len(buckets) == 5  # staging, output, archive, quarantine, access logs
    for props in (b["Properties"] for b in buckets.values()):
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    policies = synth.resources("AWS::S3::BucketPolicy").values()
    tls_only = [
        p
        for p in policies
        if '"aws:SecureTransport": "false"'
        in dumps(p["Properties"]["PolicyDocument"]).replace(
            '"aws:SecureTransport":"false"', '"aws:SecureTransport": "false"'
        )
    ]
    assert len(tls_only) == 5


def test_data_buckets_log_access(synth: Synth) -> None:
    logged = [
        b
        for b in synth.resources("AWS::S3::Bucket").values()
        if "LoggingConfiguration" in b["Properties"]
    ]
    assert len(logged) == 4


def _rules(synth: Synth, bucket: IConstruct) -> dict[str, dict[str, Any]]:
    """The bucket's lifecycle rules by id."""
    props = synth.json["Resources"][synth.logical_id(bucket)]["Properties"]
    return {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}


def test_staging_is_versioned_aborts_uploads_and_allows_browser_uploads(synth: Synth) -> None:
    synth.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}
                        )
                    ]
                )
            },
            "CorsConfiguration": {
                "CorsRules": [
                    Match.object_like(
                        {"AllowedMethods": ["PUT", "POST"], "ExposedHeaders": ["ETag"]}
                    )
                ]
            },
        },
    )


def test_staging_keeps_superseded_uploads_for_a_while_then_expires_them_and_their_markers(
    synth: Synth,
) -> None:
    # GIVEN the default parameters WHEN synthesized THEN superseded uploads (noncurrent
    # versions) expire after staging_noncurrent_days, and so do the delete markers left behind
    days = synth.stack.props.staging_noncurrent_days
    assert days == 14
    rule = _rules(synth, synth.stack.storage.staging)["expire-old-versions"]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": days}
    assert rule["ExpiredObjectDeleteMarker"] is True
    assert rule["Status"] == "Enabled"
    assert "ExpirationInDays" not in rule  # current uploads are the pipeline's to move


def test_output_aborts_uploads_and_expires_what_batch_jobs_left(synth: Synth) -> None:
    rules = _rules(synth, synth.stack.storage.output)
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 1
    }
    failures = rules["expire-batch-failures"]
    assert (failures["Prefix"], failures["ExpirationInDays"]) == (keys.BATCH_FAILURES_PREFIX, 30)
    parts = rules["expire-fanout-parts"]
    assert (parts["Prefix"], parts["ExpirationInDays"]) == (keys.FANOUT_PREFIX, 7)


def test_archive_moves_to_colder_storage(synth: Synth) -> None:
    days = synth.stack.props.archive_transition_days
    synth.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Transitions": [
                                    {
                                        "StorageClass": "GLACIER_IR",
                                        "TransitionInDays": days,
                                    }
                                ]
                            }
                        )
                    ]
                )
            }
        },
    )


def test_archive_expires_replaced_originals_and_delete_markers(synth: Synth) -> None:
    # GIVEN the versioned archive WHEN an original is archived again (or expires) THEN the
    # version it replaced is deleted after archive_noncurrent_days, and a delete marker with
    # nothing behind it goes too: nothing stays billed forever
    days = synth.stack.props.archive_noncurrent_days
    assert days == 90
    archive = synth.stack.storage.archive
    props = synth.json["Resources"][synth.logical_id(archive)]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    rule = _rules(synth, archive)["expire-old-versions"]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": days}
    assert rule["ExpiredObjectDeleteMarker"] is True


def test_archive_and_quarantine_abort_incomplete_multipart_uploads(synth: Synth) -> None:
    # the moves are multipart copies: a timed-out or crashed one leaves parts behind
    storage = synth.stack.storage
    for bucket in (storage.archive, storage.quarantine, storage.staging, storage.output):
        rule = _rules(synth, bucket)["abort-incomplete-uploads"]
        assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
        assert rule["Status"] == "Enabled"
        assert "Prefix" not in rule and "Filter" not in rule  # every key


# --- ingest -------------------------------------------------------------------------------------
def test_staging_events_go_to_a_queue_with_a_dead_letter_queue(synth: Synth) -> None:
    queues = synth.resources("AWS::SQS::Queue")
    assert len(queues) == 2
    with_redrive = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    assert len(with_redrive) == 1
    assert with_redrive[0]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 5
    notifications = synth.one("Custom::S3BucketNotifications")
    config = notifications["NotificationConfiguration"]["QueueConfigurations"]
    assert [c["Events"] for c in config] == [["s3:ObjectCreated:*"]]


def test_trigger_reads_the_queue_with_partial_batch_responses_and_a_concurrency_cap(
    synth: Synth,
) -> None:
    mapping = synth.one("AWS::Lambda::EventSourceMapping")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 10
    assert mapping["ScalingConfig"] == {
        "MaximumConcurrency": synth.stack.props.trigger_max_concurrency
    }


# --- functions ----------------------------------------------------------------------------------
def test_functions_run_the_project_handlers_with_their_own_settings(synth: Synth) -> None:
    functions = [f["Properties"] for f in synth.resources("AWS::Lambda::Function").values()]
    by_handler = {
        f["ImageConfig"]["Command"][0]: f for f in functions if f.get("PackageType") == "Image"
    }
    assert set(by_handler) == set(names.HANDLERS.values())
    for step, handler in names.HANDLERS.items():
        fn = by_handler[handler]
        assert fn["ImageConfig"]["EntryPoint"] == ["python", "-m", "awslambdaric"]
        assert fn["Timeout"] == names.FUNCTION_TIMEOUT_SECONDS[step]
        assert fn["MemorySize"] == names.FUNCTION_MEMORY_MB[step]
        assert fn["TracingConfig"] == {"Mode": "Active"}
        assert set(fn["Environment"]["Variables"]) == set(names.FUNCTION_SETTINGS[step])


def _function(synth: Synth, step: str) -> dict[str, Any]:
    props: dict[str, Any] = synth.json["Resources"][synth.logical_id(synth.stack.functions[step])][
        "Properties"
    ]
    return props


def test_archive_and_quarantine_have_time_for_the_largest_file(synth: Synth) -> None:
    # a 50 GB move is ~100 part copies of 512 MiB, run in parallel: Lambda's maximum timeout,
    # so a retry never restarts a move that merely needed more time
    for step in ("archive", "quarantine"):
        fn = _function(synth, step)
        assert fn["Timeout"] == 900
        assert fn["MemorySize"] >= 512


def test_conversions_in_lambda_are_capped_and_no_other_function_reserves(synth: Synth) -> None:
    # GIVEN the defaults THEN a burst of uploads runs at most convert_max_concurrency
    # conversions at once, leaving the rest of the account (the grant API included) alone
    cap = synth.stack.props.convert_max_concurrency
    assert 0 < cap <= 50
    assert _function(synth, "convert")["ReservedConcurrentExecutions"] == cap
    reserving = [
        step
        for step in synth.stack.functions
        if "ReservedConcurrentExecutions" in _function(synth, step)
    ]
    assert reserving == ["convert"]


# --- batch --------------------------------------------------------------------------------------
def test_batch_job_runs_the_container_command_with_retry_by_exit_code(synth: Synth) -> None:
    job = synth.one("AWS::Batch::JobDefinition")
    assert job["PlatformCapabilities"] == ["FARGATE"]
    assert job["ContainerProperties"]["Command"] == list(names.BATCH_COMMAND)
    assert job["Timeout"] == {"AttemptDurationSeconds": synth.stack.props.batch_timeout_seconds}
    expected = names.BATCH_RETRY_STRATEGY
    assert job["RetryStrategy"] == {
        "Attempts": expected["attempts"],
        "EvaluateOnExit": [
            {"Action": r["action"], "OnExitCode": r["onExitCode"]}
            for r in expected["evaluateOnExit"]  # type: ignore[attr-defined]
        ],
    }
    assert job["RetryStrategy"]["EvaluateOnExit"][-1] == {"Action": "EXIT", "OnExitCode": "*"}
    compute = synth.one("AWS::Batch::ComputeEnvironment")
    assert compute["ComputeResources"]["Type"] == "FARGATE"


def test_batch_job_is_sized_per_file_within_the_configured_ladder(synth: Synth) -> None:
    props = synth.stack.props
    job = synth.one("AWS::Batch::JobDefinition")
    requirements = {
        r["Type"]: r["Value"] for r in job["ContainerProperties"]["ResourceRequirements"]
    }
    # the job definition holds the smallest rung; each submission asks for its file's rung
    assert requirements == {
        "VCPU": str(props.batch_min_vcpu),
        "MEMORY": str(props.batch_min_vcpu * props.batch_memory_per_vcpu_mib),
    }
    compute = synth.one("AWS::Batch::ComputeEnvironment")
    assert compute["ComputeResources"]["MaxvCpus"] >= props.batch_max_vcpu
    validate = _function(synth, "validate")["Environment"]["Variables"]
    assert validate[names.ENV_BATCH_SIZING] == props.batch_sizing.to_setting()
    machine = json.loads(synth.one("AWS::StepFunctions::StateMachine")["DefinitionString"])
    overrides = machine["States"]["ConvertInBatch"]["Parameters"]["ContainerOverrides"]
    assert overrides["ResourceRequirements"] == [
        {"Type": "VCPU", "Value.$": "$.plan.resources.vcpu"},
        {"Type": "MEMORY", "Value.$": "$.plan.resources.memory"},
    ]
    assert machine["States"]["Validate"]["ResultSelector"]["resources.$"] == ("$.Payload.resources")


def test_batch_sizing_comes_from_context_and_is_checked() -> None:
    context = {"chute:batch_max_vcpu": "8", "chute:batch_bytes_per_vcpu": str(1 << 30)}
    props = ChuteProps.from_context(context.get)
    assert props.batch_sizing.resources(3 << 30) == {"vcpu": "4", "memory": "8192"}
    with pytest.raises(ValueError, match="max_vcpu=12"):
        ChuteProps(batch_max_vcpu=12)
    with pytest.raises(ValueError, match="memory_per_vcpu_mib"):
        ChuteProps(batch_memory_per_vcpu_mib=512)


# --- workflow -----------------------------------------------------------------------------------
def test_state_machine_is_the_workflow_file_inline_standard_logged_and_traced(
    synth: Synth,
) -> None:
    machine = synth.one("AWS::StepFunctions::StateMachine")
    assert machine["StateMachineType"] == "STANDARD"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert json.loads(machine["DefinitionString"]) == json.loads(WORKFLOW_FILE.read_text())
    assert set(machine["DefinitionSubstitutions"]) == set(names.PLACEHOLDERS)


def test_state_machine_logs_to_a_vended_logs_group(synth: Synth) -> None:
    # /aws/vendedlogs/ needs no CloudWatch Logs resource policy entry per log group
    workflow = synth.stack.workflow
    group = synth.json["Resources"][synth.logical_id(workflow.log_group)]["Properties"]
    assert group["LogGroupName"] == "/aws/vendedlogs/states/Chute-pipeline"
    machine = synth.one("AWS::StepFunctions::StateMachine")
    (destination,) = machine["LoggingConfiguration"]["Destinations"]
    assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] == {
        "Fn::GetAtt": [synth.logical_id(workflow.log_group), "Arn"]
    }


def test_cdk_and_the_embedded_runtime_fill_the_same_placeholders(synth: Synth) -> None:
    embedded = EmbeddedAws(LocalSettings(state_dir=Path("/nonexistent")))
    assert (
        set(synth.stack.substitutions()) == set(embedded.substitutions()) == set(names.PLACEHOLDERS)
    )


# --- permissions --------------------------------------------------------------------------------
def test_state_machine_may_invoke_steps_run_batch_sync_and_publish(synth: Synth) -> None:
    actions = _actions(_statements(synth, "StateMachineRole"))
    assert {"lambda:InvokeFunction", "batch:SubmitJob", "batch:DescribeJobs"} <= actions
    assert {"events:PutRule", "events:PutTargets", "events:DescribeRule", "sns:Publish"} <= actions
    # S3: only the fan-out's manifests, which the Distributed Map's ItemReader reads
    (s3,) = [st for st in _statements(synth, "StateMachineRole") if "s3:" in dumps(st["Action"])]
    assert s3["Action"] == "s3:GetObject"
    assert "StorageOutput" in dumps(s3["Resource"])
    assert f'"/{keys.FANOUT_MANIFESTS}"' in dumps(s3["Resource"])


def _s3_access(synth: Synth, role_fragment: str) -> dict[str, set[str]]:
    """bucket logical-id prefix ("Staging", "Output", ...) -> S3 actions the role has on it."""
    access: dict[str, set[str]] = {}
    for st in _statements(synth, role_fragment):
        actions = {a for a in _actions([st]) if a.startswith("s3:")}
        if not actions:
            continue
        for bucket in ("Staging", "Output", "Archive", "Quarantine"):
            if f"Storage{bucket}" in dumps(st["Resource"]):
                access.setdefault(bucket, set()).update(actions)
    return access


READ = {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"}
WRITE = {"s3:PutObject", "s3:AbortMultipartUpload"}
DELETE = {"s3:DeleteObject", "s3:DeleteObjectVersion"}
LIST_PARTS = {"s3:ListMultipartUploadParts"}
# publishing outputs with conditional writes: HEAD the key (404, not 403, when it is missing:
# ListBucket), write, and delete an older version's output the newer one doesn't have
PUBLISH = {"s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:AbortMultipartUpload"} | {
    "s3:DeleteObject"
}


def test_each_function_gets_only_what_it_uses(synth: Synth) -> None:
    assert "states:StartExecution" in _actions(_statements(synth, "TriggerStep"))
    assert _s3_access(synth, "TriggerStep") == {}
    assert _s3_access(synth, "ValidateStep") == {"Staging": READ}
    assert _s3_access(synth, "ConvertStep") == {"Staging": READ, "Output": PUBLISH}
    # the moves: a conditional multipart copy (resumable: ListMultipartUploadParts) of the
    # staged version, then a conditional delete of the staged key and of the version
    assert _s3_access(synth, "ArchiveStep") == {
        "Staging": READ | DELETE,
        "Archive": READ | WRITE | LIST_PARTS,
    }
    assert _s3_access(synth, "QuarantineStep") == {
        "Staging": READ | DELETE,
        "Quarantine": READ | WRITE | LIST_PARTS,
        "Output": READ | DELETE,  # only what a rejecting Batch job left:
    }
    (failures,) = [
        st
        for st in _statements(synth, "QuarantineStep")
        if "StorageOutput" in dumps(st["Resource"]) and "s3:GetObject" in _actions([st])
    ]
    assert f'"/{keys.BATCH_FAILURES_PREFIX}*"' in dumps(failures["Resource"])
    # the Batch job converts like the convert function
    assert _s3_access(synth, "JobRole") == {"Staging": READ, "Output": PUBLISH}
    # presigned PUT/POST are signed with the grant function's own credentials
    assert _s3_access(synth, "GrantStep") == {"Staging": {"s3:PutObject"}}
    assert _s3_access(synth, "UploadRole") == {
        "Staging": {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}
    }


def test_the_fanout_function_works_under_its_prefix_and_publishes_output_keys_only(
    synth: Synth,
) -> None:
    assert _s3_access(synth, "FanoutStep") == {"Staging": READ, "Output": PUBLISH}
    objects = [
        dumps(st["Resource"])
        for st in _statements(synth, "FanoutStep")
        if "StorageOutput" in dumps(st["Resource"]) and "s3:PutObject" in _actions([st])
    ]
    (resources,) = objects
    # never the whole output bucket: the fan-out prefix, and keys ending in an output suffix
    assert '"/*"' not in resources
    assert f'"/{keys.FANOUT_PREFIX}*"' in resources
    assert '"/*.jsonl"' in resources and '"/*.parquet"' in resources
    assert keys.rejected_key("x").endswith(".jsonl")  # the rejected rows are under *.jsonl


def test_operators_policy_allows_monitoring_and_redrive(synth: Synth) -> None:
    policy = synth.one("AWS::IAM::ManagedPolicy")
    actions = _actions(policy["PolicyDocument"]["Statement"])
    assert {
        "states:ListExecutions",
        "states:DescribeExecution",
        "states:GetExecutionHistory",
        "states:RedriveExecution",
    } <= actions


# --- outputs ------------------------------------------------------------------------------------
def test_outputs_locate_every_resource_operators_need(synth: Synth) -> None:
    outputs = set(synth.json["Outputs"])
    assert {
        "StagingBucket",
        "OutputBucket",
        "ArchiveBucket",
        "QuarantineBucket",
        "StateMachineArn",
        "StateMachineConsoleUrl",
        "CompletionTopicArn",
        "GrantApiUrl",
        "UploadRoleArn",
        "UserPoolId",
        "UserPoolClientId",
    } <= outputs


# --- decompression limits -----------------------------------------------------------------------
def test_decompression_limits_reach_validate_convert_and_the_batch_job(synth: Synth) -> None:
    # GIVEN the stack with its default parameters
    expected = {
        names.ENV_MAX_DECOMPRESSED_BYTES: str(names.DEFAULT_MAX_DECOMPRESSED_BYTES),
        names.ENV_MAX_DECOMPRESSION_RATIO: str(names.DEFAULT_MAX_DECOMPRESSION_RATIO),
    }
    functions = [f["Properties"] for f in synth.resources("AWS::Lambda::Function").values()]
    by_handler = {f["ImageConfig"]["Command"][0]: f for f in functions if "ImageConfig" in f}
    # THEN both functions that read content, and the Batch job, enforce the same limits
    for step in ("validate", "convert"):
        variables = by_handler[names.HANDLERS[step]]["Environment"]["Variables"]
        assert {k: variables[k] for k in expected} == expected
    job = synth.one("AWS::Batch::JobDefinition")
    env = {e["Name"]: e["Value"] for e in job["ContainerProperties"]["Environment"]}
    assert {k: env[k] for k in expected} == expected


def test_decompression_limits_come_from_context() -> None:
    context = {"chute:max_decompressed_bytes": "1000000", "chute:max_decompression_ratio": 50}
    props = ChuteProps.from_context(context.get)
    assert (props.max_decompressed_bytes, props.max_decompression_ratio) == (1000000, 50)
    with pytest.raises(ValueError, match="max_decompression_ratio"):
        ChuteProps(max_decompression_ratio=0)


def test_the_fan_out_runs_its_parts_as_child_executions_of_the_machine(synth: Synth) -> None:
    props = synth.stack.props
    policies = [
        p["Properties"]
        for p in synth.resources("AWS::IAM::Policy").values()
        if "FanOutChildren" in p["Properties"]["PolicyName"]
    ]
    assert len(policies) == 1
    statements = policies[0]["PolicyDocument"]["Statement"]
    assert [s["Action"] for s in statements] == [
        "states:StartExecution",
        ["states:DescribeExecution", "states:StopExecution"],
    ]
    assert "execution:" in dumps(statements[1]["Resource"])
    machine = synth.one("AWS::StepFunctions::StateMachine")
    subs = machine["DefinitionSubstitutions"]
    assert subs["FanOutThresholdBytes"] == str(props.fanout_threshold_bytes)
    assert subs["FanOutMaxConcurrency"] == str(props.fanout_max_concurrency)
    fanout = _function(synth, "fanout")["Environment"]["Variables"]
    assert fanout == {
        names.ENV_FANOUT_PART_BYTES: str(props.fanout_part_bytes),
        names.ENV_CONTRACTS_FILE: names.CONTRACTS_FILE_IN_IMAGE,
    }
    with pytest.raises(ValueError, match="fanout_part_bytes"):
        ChuteProps(fanout_part_bytes=1 << 20)
