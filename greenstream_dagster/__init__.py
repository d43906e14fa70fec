"""GreenStream: smart-meter readings from an S3 landing zone to graded data in PostgreSQL and a Parquet lake."""
