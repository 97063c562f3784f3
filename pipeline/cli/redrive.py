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
from .arguments import (
    UsageError,
    endpoint_url,
    kinesis_stream_name,
    location,
    name,
    refuse_unused,
    source_location,
    use_endpoint,
)

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
        flags = ("--prefix", args.prefix), ("--name", args.name)
        refuse_unused("for rows written to a folder or s3://, not a kinesis:// stream", *flags)
        return to_stream(args.to[len("kinesis://") :])
    prefix = DEFAULT_PREFIX if args.prefix is None else args.prefix  # "" is a prefix: the bucket's top
    dest = Destination(open_store(args.to), prefix, stream=args.name or _NAME)
    return to_store(dest.checked(args.partition_keys))


_NAME = "redrive"


def _not_into_itself(source: str, to: str) -> None:
    """UsageError if the rows would be written among the error objects SOURCE (a folder or prefix) holds: a
    later redrive of it would meet them as unreadable lines.

    >>> _not_into_itself("s3://b/errors/", "s3://b/errors-redriven/")
    >>> _not_into_itself("s3://b/errors", "s3://b/errors/out/")
    Traceback (most recent call last):
    pipeline.cli.arguments.UsageError: --to s3://b/errors/out/ is inside SOURCE s3://b/errors: write the rows elsewhere
    """
    if source.startswith("s3://") or to.startswith("s3://"):
        inside = to.startswith("s3://") and (to.rstrip("/") + "/").startswith(source.rstrip("/") + "/")
    else:
        folder, there = Path(source).resolve(), Path(to).resolve()
        inside = folder.is_dir() and (there == folder or folder in there.parents)
    if inside:
        raise UsageError(f"--to {to} is inside SOURCE {source}: write the rows elsewhere")


def _redrive(args: argparse.Namespace) -> int:
    use_endpoint(args.endpoint_url)
    config = Config.from_env(os.environ)
    args.partition_keys = [k.name for k in config.partition_keys]
    _not_into_itself(args.source, args.to)
    store, keys = _source(args.source)
    target = _target(args)
    print(f"redrive {args.source} -> {args.to}{' (dry run: nothing is written)' if args.dry_run else ''}")
    report = redrive(store, keys, config, target, dry_run=args.dry_run)
    if not report.records and not report.unreadable:  # empty objects (a gzip of nothing): as no objects at all
        raise UsageError(f"{args.source}: its objects hold no records, so nothing to redrive (check the path)")
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
    parser.add_argument("--prefix", help=f"prefix for the rows (default {DEFAULT_PREFIX})")
    parser.add_argument("--name", type=name("a name"), help=f"name in the objects' names (default {_NAME})")
    parser.add_argument("--dry-run", action="store_true", help="show what would be written; write nothing")
    parser.add_argument(
        "--endpoint-url",
        type=endpoint_url,
        help="AWS endpoint for S3 and Kinesis, e.g. a local moto server (default: AWS_ENDPOINT_URL, else AWS)",
    )
    parser.set_defaults(run=_redrive)
