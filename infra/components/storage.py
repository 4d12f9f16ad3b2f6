"""The four buckets (and the bucket that receives their access logs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from tasks.formats import keys


class Storage(Construct):
    """staging (versioned; uploads land here), output, archive (colder over time), quarantine."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        archive_transition_days: int,
        archive_expiration_days: int,
        archive_noncurrent_days: int,
        staging_noncurrent_days: int,
        upload_origins: Sequence[str] = ("*",),
    ) -> None:
        super().__init__(scope, construct_id)
        common: dict[str, Any] = {
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "encryption": s3.BucketEncryption.S3_MANAGED,
            "enforce_ssl": True,
            "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            "removal_policy": RemovalPolicy.RETAIN,
        }
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            **common,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        )

        def abort_incomplete_uploads() -> s3.LifecycleRule:
            # what a crashed or timed-out multipart upload or copy leaves (billed, invisible)
            return s3.LifecycleRule(
                id="abort-incomplete-uploads",
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )

        def expire_old_versions(days: int) -> s3.LifecycleRule:
            # Older versions of a key (replaced, or hidden by a delete marker) go after `days`
            # (0: never); then the delete markers left with no version behind them go too.
            return s3.LifecycleRule(
                id="expire-old-versions",
                noncurrent_version_expiration=Duration.days(days) if days else None,
                expired_object_delete_marker=True,
            )

        def logged(prefix: str) -> dict[str, Any]:
            return {
                **common,
                "server_access_logs_bucket": self.access_logs,
                "server_access_logs_prefix": f"{prefix}/",
            }

        self.staging = s3.Bucket(
            self,
            "Staging",
            **logged("staging"),
            versioned=True,
            # Superseded uploads (an older version of a key, whose execution ends Stale) stay
            # here as noncurrent versions until they expire.
            lifecycle_rules=[
                abort_incomplete_uploads(),
                expire_old_versions(staging_noncurrent_days),
            ],
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.POST],
                    allowed_origins=list(upload_origins),
                    allowed_headers=["*"],
                    exposed_headers=["ETag"],
                    max_age=3000,
                )
            ],
        )
        self.output = s3.Bucket(
            self,
            "Output",
            **logged("output"),
            lifecycle_rules=[
                abort_incomplete_uploads(),
                # Quarantine deletes what a rejecting Batch job leaves; this catches the rest
                # (e.g. an execution stopped before its Quarantine step).
                s3.LifecycleRule(
                    id="expire-batch-failures",
                    prefix=keys.BATCH_FAILURES_PREFIX,
                    expiration=Duration.days(30),
                ),
                # A fan-out removes its parts when it ends (published, rejected or abandoned);
                # this catches an execution stopped in between. Kept a week: a redrive may
                # still use them.
                s3.LifecycleRule(
                    id="expire-fanout-parts",
                    prefix=keys.FANOUT_PREFIX,
                    expiration=Duration.days(7),
                ),
            ],
        )
        archive_rule = s3.LifecycleRule(
            id="colder-over-time",
            transitions=[
                s3.Transition(
                    storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                    transition_after=Duration.days(archive_transition_days),
                )
            ],
            expiration=Duration.days(archive_expiration_days) if archive_expiration_days else None,
        )
        # An original archived again (a newer version of its key) keeps the one it replaced as a
        # noncurrent version, and so does one expired by archive_expiration_days.
        self.archive = s3.Bucket(
            self,
            "Archive",
            **logged("archive"),
            versioned=True,
            lifecycle_rules=[
                archive_rule,
                expire_old_versions(archive_noncurrent_days),
                abort_incomplete_uploads(),
            ],
        )
        self.quarantine = s3.Bucket(
            self,
            "Quarantine",
            **logged("quarantine"),
            lifecycle_rules=[abort_incomplete_uploads()],
        )
