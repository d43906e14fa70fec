"""Embedded S3 and PostgreSQL for local work and tests, and resolution of configured ones."""
