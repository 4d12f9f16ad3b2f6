"""Trigger: S3 events delivered through SQS -> one idempotently named execution per object."""
