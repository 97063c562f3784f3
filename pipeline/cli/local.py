"""``run-local``: a local Firehose from a Kinesis stream or a file to S3 or a folder."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..config import Config
from ..iceberg import parse_iceberg_table
from ..local.runner import Settings, local_handler, run_local
from ..local.sources import FileSource, KinesisSource, Source
from ..logs import configure_logging
from ..sinks.delivery import Destination, TableSink
from ..sinks.prefixes import DEFAULT_ERROR_PREFIX, DEFAULT_PREFIX
from ..sinks.storage import S3Prefix, open_store
from .arguments import (
    UsageError,
    endpoint_url,
    input_file,
    kinesis_stream_name,
    location,
    name,
    number,
    output_folder,
    refuse_unused,
    size,
    use_endpoint,
    whole,
)

__all__ = ["add_run_local"]


def _run_local(args: argparse.Namespace) -> int:
    _check_flags(args)
    use_endpoint(args.endpoint_url)
    env = dict(os.environ)
    env.setdefault("LOG_LEVEL", "WARNING")  # the progress line says how it goes; failures are still logged
    config = Config.from_env(env)
    configure_logging(config.log_level, sys.stderr)
    settings = Settings(
        buffer_bytes=args.buffer_size,
        buffer_seconds=args.buffer_interval,
        retries=args.retries,
        follow=args.follow,
    )
    dest: Destination | TableSink
    if args.to.startswith(ICEBERG):
        dest = _iceberg(args, config)
    else:
        prefix = DEFAULT_PREFIX if args.prefix is None else args.prefix
        error_prefix = DEFAULT_ERROR_PREFIX if args.error_prefix is None else args.error_prefix
        dest = Destination(open_store(args.to), prefix, error_prefix, args.name)
    keys = frozenset(k.name for k in config.partition_keys)
    dest.checked(keys)  # a bad prefix is said before the source is read
    if isinstance(dest, Destination) and isinstance(dest.store, S3Prefix):
        dest.store.check_reachable()  # and a bucket that is not there, or not reachable
    start = (args.start or "trim_horizon").upper()
    source: Source = FileSource(args.file) if args.file else KinesisSource(args.stream, start=start)
    if isinstance(source, FileSource) and not source.waiting:  # a wrong file looks like this: say so, not "0"
        raise UsageError(
            f"{'standard input' if args.file == '-' else args.file} holds no records: give JSON Lines of change "
            "records, a {'Records': [...]} document or a Firehose event"
        )
    handler, reingested = local_handler(config, source)
    tally = run_local(source, handler, dest, settings, reingested=reingested, partition_keys=keys, progress=sys.stderr)
    if tally.first_failure:
        print(f"first failure: {tally.first_failure}", file=sys.stderr)
    return 0


ICEBERG = "iceberg:"


def _check_flags(args: argparse.Namespace) -> None:
    """Refuse a flag given where it would have no effect, rather than ignore it."""
    if args.file:
        start, follow = ("--start", args.start), ("--follow", args.follow or None)
        refuse_unused("for --stream (a --file is read once, to its end)", start, follow)
    if args.to.startswith(ICEBERG):
        prefixes = ("--prefix", args.prefix), ("--error-prefix", args.error_prefix)
        why = "for a folder or s3:// destination (--to iceberg: puts failed records under DIR/errors/)"
        refuse_unused(why, *prefixes)


def _to(text: str) -> str:
    """``--to``: ``s3://bucket[/base/]``, a local folder, or ``iceberg:DIR[?table=database.table]``."""
    if not text.startswith(ICEBERG):
        return location(text)
    folder, _, query = text[len(ICEBERG) :].partition("?")
    if not folder:
        raise argparse.ArgumentTypeError(f"{text!r}: give the folder, iceberg:DIR?table=database.table")
    output_folder(folder)
    pairs = [pair for pair in query.split("&") if pair]
    for pair in pairs:
        option, _, value = pair.partition("=")
        if option != "table" or not value:
            raise argparse.ArgumentTypeError(f"{text!r}: the only option is table=database.table")
        try:
            parse_iceberg_table(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    if len(pairs) > 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give table=database.table once")
    return text


def _iceberg(args: argparse.Namespace, config: Config) -> TableSink:
    """The local Iceberg destination for ``--to iceberg:DIR[?table=db.t]`` (pyiceberg, the ``iceberg`` extra)."""
    if config.format != "iceberg":
        raise UsageError(
            f"--to {args.to}: the Iceberg destination takes PIPELINE_FORMAT=iceberg (it is {config.format})"
        )
    try:
        from ..sinks.iceberg import open_iceberg  # noqa: PLC0415 (pyiceberg is optional: loaded only for iceberg:)
    except ImportError:
        raise UsageError(
            "--to iceberg: needs pyiceberg: pip install 'ddb-firehose-pipeline[iceberg]' (or make test's .venv)"
        ) from None
    return open_iceberg(args.to, config.iceberg_types, config.iceberg_keys, args.name)


def add_run_local(commands: Any) -> None:
    """Register ``run-local`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "run-local",
        help="a local Firehose: Kinesis stream or file -> handler -> S3 or a folder",
        description="Runs the handler the way Firehose does, configured by the same PIPELINE_* variables. "
        "Reads until the source is drained (re-ingested records included), unless --follow; Ctrl-C stops it "
        "(exit status 130).",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stream", type=kinesis_stream_name, help="Kinesis stream name or ARN to read")
    where.add_argument(
        "--file",
        type=input_file,
        help="file of change records (JSON Lines, {'Records': [...]}, or a Firehose event; - for standard input)",
    )
    parser.add_argument(
        "--to",
        required=True,
        type=_to,
        help="s3://bucket[/base/], a local folder, or iceberg:DIR[?table=database.table] (local Iceberg tables, "
        "with PIPELINE_FORMAT=iceberg)",
    )
    parser.add_argument("--prefix", help=f"S3 prefix for Ok data (default {DEFAULT_PREFIX}); not for iceberg:")
    parser.add_argument(
        "--error-prefix", help=f"S3 prefix for failed records (default {DEFAULT_ERROR_PREFIX}); not for iceberg:"
    )
    parser.add_argument(
        "--buffer-size",
        type=size(200_000, 3_000_000),
        default="1MB",
        help="buffer size hint, 0.2MB to 3MB (default 1MB)",
    )
    parser.add_argument(
        "--buffer-interval", type=number(0, 900), default=60.0, help="buffer interval in s, 0 to 900 (default 60)"
    )
    parser.add_argument(
        "--retries", type=whole(0, 300), default=3, help="retries of a failed invocation, 0 to 300 (default 3)"
    )
    parser.add_argument(
        "--start",
        choices=("trim_horizon", "latest"),
        help="where --stream's shards are read from (default trim_horizon)",
    )
    parser.add_argument("--follow", action="store_true", help="keep reading --stream after it is drained")
    parser.add_argument(
        "--name",
        type=name("a delivery stream name"),
        default="local-firehose",
        help="delivery stream name (in ARNs and object names)",
    )
    parser.add_argument(
        "--endpoint-url",
        type=endpoint_url,
        help="AWS endpoint for Kinesis and S3, e.g. a local moto server (default: AWS_ENDPOINT_URL, else AWS)",
    )
    parser.set_defaults(run=_run_local)
