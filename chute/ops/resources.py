"""The names and ARNs of the pipeline's resources in the embedded runtime (the same set the CDK
stack outputs): what `chute up` creates and what ``deployment.connect(endpoint_url=...)`` finds."""

from __future__ import annotations

from dataclasses import dataclass

from tasks import names

ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class Resources:
    """Names and ARNs of the pipeline's resources (the same set the CDK stack outputs)."""

    prefix: str
    region: str
    account: str = ACCOUNT_ID

    def bucket(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    @property
    def staging_bucket(self) -> str:
        return self.bucket("staging")

    @property
    def output_bucket(self) -> str:
        return self.bucket("output")

    @property
    def archive_bucket(self) -> str:
        return self.bucket("archive")

    @property
    def quarantine_bucket(self) -> str:
        return self.bucket("quarantine")

    @property
    def queue_name(self) -> str:
        return f"{self.prefix}-staging-events"

    @property
    def dlq_name(self) -> str:
        return f"{self.prefix}-staging-events-dlq"

    def function_name(self, step: str) -> str:
        return f"{self.prefix}-{step}"

    def function_arn(self, step: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name(step)}"

    @property
    def completion_topic_name(self) -> str:
        return f"{self.prefix}-completions"

    @property
    def completion_topic_arn(self) -> str:
        return f"arn:aws:sns:{self.region}:{self.account}:{self.completion_topic_name}"

    @property
    def event_bus_name(self) -> str:
        return f"{self.prefix}-events"

    @property
    def event_bus_arn(self) -> str:
        return f"arn:aws:events:{self.region}:{self.account}:event-bus/{self.event_bus_name}"

    @property
    def events_log_group(self) -> str:
        """Where a rule of the bus copies every chute event (what `chute watch` and the console
        read; the stack has the same)."""
        return f"/chute/{self.prefix}/events"

    @property
    def state_machine_name(self) -> str:
        return f"{self.prefix}-pipeline"

    @property
    def state_machine_arn(self) -> str:
        return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{self.state_machine_name}"

    @property
    def job_queue(self) -> str:
        return f"{self.prefix}-convert"

    @property
    def job_definition(self) -> str:
        return f"{self.prefix}-convert"

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{self.account}:role/{self.prefix}-local"

    @property
    def upload_role_name(self) -> str:
        return f"{self.prefix}-upload"

    @property
    def upload_role_arn(self) -> str:
        return f"arn:aws:iam::{self.account}:role/{self.upload_role_name}"

    @property
    def user_pool_name(self) -> str:
        return f"{self.prefix}-users"

    @property
    def user_pool_client_name(self) -> str:
        return f"{self.prefix}-upload-clients"

    def substitutions(
        self,
        *,
        large_file_threshold_bytes: int = names.DEFAULT_LARGE_FILE_THRESHOLD_BYTES,
        batch_timeout_seconds: int = names.DEFAULT_BATCH_TIMEOUT_SECONDS,
        fanout_threshold_bytes: int = names.DEFAULT_FANOUT_THRESHOLD_BYTES,
        fanout_max_concurrency: int = names.DEFAULT_FANOUT_MAX_CONCURRENCY,
    ) -> dict[str, str]:
        """The workflow's ${Placeholder} values for these resources."""
        return names.workflow_substitutions(
            function_arns={step: self.function_arn(step) for step in names.HANDLERS},
            batch_job_queue_arn=(
                f"arn:aws:batch:{self.region}:{self.account}:job-queue/{self.job_queue}"
            ),
            batch_job_definition_arn=(
                f"arn:aws:batch:{self.region}:{self.account}:job-definition/{self.job_definition}:1"
            ),
            large_file_threshold_bytes=large_file_threshold_bytes,
            batch_attempt_seconds=batch_timeout_seconds,
            completion_topic_arn=self.completion_topic_arn,
            completion_event_bus_arn=self.event_bus_arn,
            fanout_threshold_bytes=fanout_threshold_bytes,
            fanout_max_concurrency=fanout_max_concurrency,
        )
