"""Upload grants: one object, a server-chosen key, for a client without AWS credentials.

``handler`` (the Lambda entry, over ``tasks.entry``) -> ``domain`` (pure: never boto3, botocore
or ``tasks.adapters``; collaborators injected) -> ports in ``tasks.adapters``.
"""
