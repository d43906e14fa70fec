"""Storage adapters: the S3 landing zone, the PostgreSQL operational store, the Parquet lake."""
