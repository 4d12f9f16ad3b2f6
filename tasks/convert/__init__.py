"""The convert step: CSV/TSV (optionally compressed) in staging -> JSON Lines/Parquet in the
output bucket.

``engine`` is pure streaming conversion over the native core (``reading``: decompression and
the header; ``writes``: the ordered sink thread; ``typed``: a data contract's hook), ``domain``
wires it to S3 through a Store port,
``handler`` is the Lambda entry (over ``tasks.entry``); the Batch container (``batch/``) calls the
same ``domain.convert``. Never boto3, botocore or ``tasks.adapters`` but in ``handler``; formats
come from ``tasks.formats``.
"""
