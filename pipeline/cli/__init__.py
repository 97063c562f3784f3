"""``python -m pipeline``: the command line, a thin layer over the package; nothing imports it.

Each subcommand is registered by the module here named for it:

* ``handler``: ``demo`` (the bundled ``cities`` event), ``transform EVENT.json``, ``generate-event``.
* ``athena``: ``athena-ddl``, the table over the output.
* ``local``: ``run-local``, a local Firehose.
* ``redrive``: ``redrive``, failed records through the pipeline again.
* ``sandbox``: ``sandbox``, the whole path on a moto server.
* ``backfill``: ``backfill`` (a DynamoDB export into the same layout), ``generate-export``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..config import ConfigError
from .athena import add_athena_command
from .backfill import add_backfill_commands
from .handler import add_handler_commands
from .local import add_run_local
from .redrive import add_redrive
from .sandbox import add_sandbox

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline", description="Firehose transformation for DynamoDB change data."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_handler_commands(commands)
    add_athena_command(commands)
    add_run_local(commands)
    add_redrive(commands)
    add_sandbox(commands)
    add_backfill_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; configuration errors end it with the message, not a traceback."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
