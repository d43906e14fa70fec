"""Synthetic smart-meter data with injected faults, for demos, tests and benchmarks.

`generate(GeneratorConfig(out=…)) -> Manifest` writes a landing zone
(`raw-data/YYYY-MM-DD/*.csv[.gz]`) and `manifest.json` listing every injection
and the outcome the platform must produce. The load model is described in
`load_profile`; the CLI is `greenstream generate`.
"""

from greenstream_dagster.generator.config import GeneratorConfig, GeneratorError, with_preset
from greenstream_dagster.generator.generation import generate
from greenstream_dagster.generator.manifest import Manifest

__all__ = ["GeneratorConfig", "GeneratorError", "Manifest", "generate", "with_preset"]
