"""The only modules that import boto3. They translate AWS errors (by code) into tasks.errors.
They may import ``tasks.models``/``errors``/``settings``, never a step's package (a domain):
types an adapter and a domain share live in ``tasks.models``."""
