"""Quarantine: move a rejected original to the quarantine bucket with an error report.

``handler`` (the Lambda entry, over ``tasks.entry``) -> ``domain`` (pure: never boto3, botocore
or ``tasks.adapters``; collaborators injected) -> ports in ``tasks.adapters``.
"""
