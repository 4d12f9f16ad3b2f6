"""The convert step: CSV/TSV (optionally gzip) in staging -> JSON Lines in the output bucket.

``engine`` is pure streaming conversion, ``domain`` wires it to S3, ``handler`` is the Lambda
adapter; the Batch container (``batch/``) calls the same ``domain.convert``.
"""
