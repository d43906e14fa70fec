"""The operational PostgreSQL store (SPEC §5, §8): migrations, partition-day loads, retention,
dead letters and reading look-ups. Every connection is opened by the store's handle (store.py);
the load takes that handle, the other functions its URL. None keeps state but the idle ADBC
connections (adbc_connections.py) and whether the server was reached (server_wait.py)."""
