"""S3 fixtures (embedded SeaweedFS on loopback)."""
