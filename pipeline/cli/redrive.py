"""``redrive``: run Firehose's failed records through the pipeline again."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..config import Config
from ..sinks.delivery import Destination
from ..sinks.prefixes import DEFAULT_PREFIX
from ..sinks.storage import Folder, Store, open_store
from ..tools.redrive import Target, redrive, to_store, to_stream

__all__ = ["add_redrive"]


def _source(location: str) -> tuple[Store, list[str]]:
    if "://" not in location and Path(location).is_file():
        path = Path(location)
        return Folder(path.parent), [path.name]
    store = open_store(location)
    return store, list(store.listing())


def _target(args: argparse.Namespace) -> Target:
    if args.to.startswith("kinesis://"):
        return to_stream(args.to[len("kinesis://") :])
    return to_store(Destination(open_store(args.to), args.prefix, stream=args.name).checked(args.partition_keys))


def _redrive(args: argparse.Namespace) -> int:
    config = Config.from_env(os.environ)
    args.partition_keys = [k.name for k in config.partition_keys]
    store, keys = _source(args.source)
    target = _target(args)
    print(f"redrive {args.source} -> {args.to}{' (dry run: nothing is written)' if args.dry_run else ''}")
    report = redrive(store, keys, config, target, dry_run=args.dry_run)
    print("\n".join(report.lines(args.dry_run)))
    return 1 if report.failed or report.unreadable else 0


def add_redrive(commands: Any) -> None:
    """Register ``redrive`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "redrive",
        help="run Firehose's failed records (processing-failed/ objects) through the pipeline again",
        description="Configured by the same PIPELINE_* variables as the Lambda. Error objects are never deleted "
        "or changed. Exit status 1 if some records failed again or could not be read.",
    )
    parser.add_argument("source", help="error objects: a folder, a file, or s3://bucket/prefix")
    parser.add_argument("--to", required=True, help="a folder, s3://bucket[/base/], or kinesis://STREAM (name or ARN)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"prefix for the rows (default {DEFAULT_PREFIX})")
    parser.add_argument("--name", default="redrive", help="name in the objects' names (default redrive)")
    parser.add_argument("--dry-run", action="store_true", help="show what would be written; write nothing")
    parser.set_defaults(run=_redrive)
