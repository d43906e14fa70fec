"""The operational PostgreSQL store (SPEC §5, §8): migrations, partition-day loads, retention,
dead letters and reading look-ups. Every function takes a connection URL; none keeps state."""
