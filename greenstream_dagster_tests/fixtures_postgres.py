"""PostgreSQL fixtures (embedded server on loopback)."""
