"""Trigger: S3 events delivered through SQS -> one idempotently named execution per object.

``handler`` (the Lambda entry, over ``tasks.entry``) -> ``domain`` (pure: never boto3, botocore
or ``tasks.adapters``; collaborators injected) -> ports in ``tasks.adapters``.
"""
