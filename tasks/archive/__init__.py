"""Archive: move a converted original from staging to the archive bucket.

``handler`` (the Lambda entry, over ``tasks.entry``) -> ``domain`` (pure: never boto3, botocore
or ``tasks.adapters``; collaborators injected) -> ports in ``tasks.adapters``.
"""
