"""What the S3 sensor decides (SPEC §6), as pure functions: no Dagster, no boto3."""
