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
from .arguments import UsageError, endpoint_url, kinesis_stream_name, location, name, source_location, use_endpoint

__all__ = ["add_redrive"]


def _source(where: str) -> tuple[Store, list[str]]:
    if "://" not in where and Path(where).is_file():
        path = Path(where)
        return Folder(path.parent), [path.name]
    store = open_store(where)
    keys = list(store.listing())
    if not keys:  # a typo in a prefix looks like this too: say so rather than report 0 objects
        raise UsageError(f"{where}: no objects there, so nothing to redrive (check the path or prefix)")
    return store, keys


def _destination(text: str) -> str:
    """``kinesis://STREAM``, ``s3://bucket[/base/]`` or a folder."""
    if text.startswith("kinesis://"):
        kinesis_stream_name(text[len("kinesis://") :])
        return text
    return location(text)


def _target(args: argparse.Namespace) -> Target:
    if args.to.startswith("kinesis://"):
        return to_stream(args.to[len("kinesis://") :])
    return to_store(Destination(open_store(args.to), args.prefix, stream=args.name).checked(args.partition_keys))


def _redrive(args: argparse.Namespace) -> int:
    use_endpoint(args.endpoint_url)
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
        "or changed. Exit status 1 if some records failed again or could not be read; 2 if SOURCE holds nothing.",
    )
    parser.add_argument("source", type=source_location, help="error objects: a folder, a file, or s3://bucket/prefix")
    parser.add_argument(
        "--to",
        required=True,
        type=_destination,
        help="a folder, s3://bucket[/base/], or kinesis://STREAM (name or ARN)",
    )
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"prefix for the rows (default {DEFAULT_PREFIX})")
    parser.add_argument(
        "--name", type=name("a name"), default="redrive", help="name in the objects' names (default redrive)"
    )
    parser.add_argument("--dry-run", action="store_true", help="show what would be written; write nothing")
    parser.add_argument(
        "--endpoint-url",
        type=endpoint_url,
        help="AWS endpoint for S3 and Kinesis, e.g. a local moto server (default: AWS_ENDPOINT_URL, else AWS)",
    )
    parser.set_defaults(run=_redrive)
