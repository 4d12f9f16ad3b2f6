"""Scheduled auto-redrive: failed executions whose failure was transient resume where they
failed, at most N times each.

``handler`` (the Lambda entry, over ``tasks.entry``) -> ``domain`` (pure: never boto3, botocore
or ``tasks.adapters``; collaborators injected) -> ports in ``tasks.adapters``.
"""
