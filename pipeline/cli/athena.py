"""``athena-ddl``: print the Athena table for the configured output."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date

from ..config import Config
from ..sinks.storage import check_s3_url
from ..tools.athena import athena_ddl, athena_type, firehose_prefix
from .arguments import UsageError

__all__ = ["add_athena_command"]


def _column_type(pair: str) -> tuple[str, str]:
    """``COLUMN=TYPE``, the type checked against Athena's type grammar."""
    name, sep, kind = pair.partition("=")
    if not (sep and name.strip() and kind.strip()):
        raise argparse.ArgumentTypeError(f"{pair!r} is not COLUMN=TYPE, e.g. amount=decimal(38,2)")
    try:
        return name.strip(), athena_type(kind)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _since(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: give YYYY-MM-DD, e.g. 2026-01-01") from None


def _s3_location(text: str) -> str:
    try:
        check_s3_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _run(args: argparse.Namespace) -> int:
    config = Config.from_env(os.environ)
    types = dict(args.type)
    if len(types) != len(args.type):
        raise UsageError("--type gives one column two types: give each column once")
    print(athena_ddl(config, args.table, args.location, types=types, since=args.since))
    if config.partition_keys:
        where = f"{args.location.rstrip('/')}/{firehose_prefix(config.partition_keys)}"
        print(f"-- Firehose must write under {where}", file=sys.stderr)
    return 0


def add_athena_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``athena-ddl`` to the command line (``python -m pipeline athena-ddl --table T --location s3://...``)."""
    parser = commands.add_parser(
        "athena-ddl",
        help="print the Athena CREATE EXTERNAL TABLE statement for the configured output",
        description="Columns, format, null text and partition keys come from the PIPELINE_* environment variables, "
        "as for the Lambda. Run the statement in Athena; partitions are projected (no crawler, no MSCK REPAIR).",
    )
    parser.add_argument("--table", required=True, help="NAME or DATABASE.NAME")
    parser.add_argument(
        "--location",
        required=True,
        type=_s3_location,
        help="s3://bucket/prefix/ of the output (the stack's DataLocation)",
    )
    parser.add_argument(
        "--type",
        type=_column_type,
        action="append",
        default=[],
        metavar="COLUMN=TYPE",
        help="Athena type of a tsv or jsonl column, e.g. amount=decimal(38,9) (default string); repeatable",
    )
    parser.add_argument(
        "--since", type=_since, default="2020-01-01", help="first day of date partitions (default 2020-01-01)"
    )
    parser.set_defaults(run=_run)
