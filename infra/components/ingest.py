"""Staging ObjectCreated:* → SQS (with DLQ) → trigger function (partial batch responses)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from tasks import names

MAX_RECEIVE_COUNT = 5


class Ingest(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        staging: s3.IBucket,
        key_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dlq = sqs.Queue(
            self,
            "DeadLetters",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        self.queue = sqs.Queue(
            self,
            "Events",
            # Lambda's guidance: at least 6x the function timeout.
            visibility_timeout=Duration.seconds(6 * names.FUNCTION_TIMEOUT_SECONDS["trigger"]),
            retention_period=Duration.days(4),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dlq, max_receive_count=MAX_RECEIVE_COUNT
            ),
        )
        # Prefix filter only: S3's suffix filters are case-sensitive and take one suffix each,
        # so the trigger applies the configured suffixes itself (case-insensitively).
        staging.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(self.queue),
            *([s3.NotificationKeyFilter(prefix=key_prefix)] if key_prefix else []),
        )

    def connect(self, trigger: lambda_.IFunction, *, max_concurrency: int) -> None:
        trigger.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=10,
                max_batching_window=Duration.seconds(1),
                report_batch_item_failures=True,
                max_concurrency=max_concurrency,
            )
        )
