"""The AWS Batch container: ``python -m batch`` converts one large file (see ``entrypoint``)."""
