"""The `greenstream` command: each subcommand lives beside the code it drives."""

from __future__ import annotations

import argparse
import importlib
import sys

from greenstream_dagster.settings import ConfigurationError

# Each module defines register(subparsers); the parser it adds sets `func`.
COMMAND_MODULES = (
    "greenstream_dagster.generator.command",
    "greenstream_dagster.services.command",
    "greenstream_dagster.upload_command",
    "greenstream_dagster.dev_command",
    "greenstream_dagster.journey.command",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="greenstream", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigurationError as error:
        print(f"greenstream: configuration error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
