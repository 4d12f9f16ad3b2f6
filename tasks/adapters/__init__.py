"""The only modules that import boto3. They translate AWS errors (by code) into tasks.errors."""
