"""Pure rules of SPEC §1–4: Polars in, Polars out. No Dagster, no I/O."""
