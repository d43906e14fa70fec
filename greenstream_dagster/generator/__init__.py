"""Synthetic smart-meter data with injected faults, for demos, tests and benchmarks."""
