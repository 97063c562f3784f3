"""``athena-ddl``: print the Athena table for the configured output and, with ``--current``, its current state."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date

from ..config import Config
from ..sinks.storage import check_s3_url
from ..tools.athena import DEFAULT_SINCE, athena_ddl, athena_type, firehose_prefix, iceberg_ddl, is_date_range
from ..tools.views import current_view
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


def _check_since(since: date, config: Config, *, iceberg: bool) -> None:
    """UsageError where ``--since`` would change nothing or leave the date partitions empty."""
    if iceberg:
        raise UsageError("--since sets the first day of the S3 table's date partitions: an Iceberg table has none")
    if not any(map(is_date_range, config.partition_keys)):
        raise UsageError(
            "--since sets the first day of a date partition key, and PIPELINE_PARTITION_KEYS has none with a year "
            "(e.g. day=@approximateCreationDateTime|%Y-%m-%d): leave --since out"
        )
    if since > date.today():
        raise UsageError(f"--since {since} is after today: the date partitions would hold no day")


def _s3_location(text: str) -> str:
    try:
        check_s3_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _key(text: str) -> list[str]:
    """``pk`` or ``pk,sk``: one or two column names."""
    names = [name.strip() for name in text.split(",")]
    if not 1 <= len(names) <= 2 or not all(names):
        raise argparse.ArgumentTypeError(f"{text!r} is not COLUMN or COLUMN,COLUMN, e.g. id or pk,sk")
    return names


def _run(args: argparse.Namespace) -> int:
    config = Config.from_env(os.environ)
    types = dict(args.type)
    if len(types) != len(args.type):
        raise UsageError("--type gives one column two types: give each column once")
    if args.key is not None and not args.current:
        raise UsageError("--key is for the current-state view: add --current")
    if args.since is not None:
        _check_since(args.since, config, iceberg=args.iceberg)
    if args.iceberg:  # the Iceberg table PIPELINE_FORMAT=iceberg fills (in append mode, the change log)
        table = iceberg_ddl(config, args.table, args.location, types=types)
    else:
        table = athena_ddl(config, args.table, args.location, types=types, since=args.since or DEFAULT_SINCE)
    if args.current:
        if args.key is None:
            raise UsageError("--current needs the item's key: --key id (or --key pk,sk)")
        view = current_view(config, args.table, args.key)
        print(f"{table};\n\n{view};")
    else:
        print(table)
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
        "--iceberg",
        action="store_true",
        help="print the Iceberg table (CREATE TABLE ... 'table_type'='ICEBERG') that PIPELINE_FORMAT=iceberg fills",
    )
    parser.add_argument("--since", type=_since, help=f"first day of date partitions (default {DEFAULT_SINCE})")
    parser.add_argument(
        "--current",
        action="store_true",
        help="also print CREATE OR REPLACE VIEW TABLE_current: per key, the change with the highest @version, "
        "without the keys whose last change is a REMOVE (needs @eventName and @version among the columns)",
    )
    parser.add_argument(
        "--key", type=_key, metavar="COLUMN[,COLUMN]", help="the item's key columns for --current, e.g. pk,sk"
    )
    parser.set_defaults(run=_run)
