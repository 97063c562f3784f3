"""``athena-ddl``: print the Athena table for the configured output and, with ``--current``, its current state."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date

from ..config import Config
from ..tools.athena import athena_ddl, firehose_prefix
from ..tools.views import current_view

__all__ = ["add_athena_command"]


def _types(pairs: list[str]) -> dict[str, str]:
    types = {}
    for pair in pairs:
        name, sep, kind = pair.partition("=")
        if not (sep and name and kind):
            raise ValueError(f"--type {pair!r} is not COLUMN=TYPE")
        types[name] = kind
    return types


def _run(args: argparse.Namespace) -> int:
    config = Config.from_env(os.environ)
    try:
        since = date.fromisoformat(args.since)
    except ValueError:
        raise ValueError(f"--since {args.since!r} is not a date (YYYY-MM-DD)") from None
    if args.key is not None and not args.current:
        raise ValueError("--key is for the current-state view: add --current")
    table = athena_ddl(config, args.table, args.location, types=_types(args.type), since=since)
    if args.current:
        if args.key is None:
            raise ValueError("--current needs the item's key: --key id (or --key pk,sk)")
        view = current_view(config, args.table, args.key.split(","))
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
        "--location", required=True, help="s3://bucket/prefix/ of the output (the stack's DataLocation)"
    )
    parser.add_argument(
        "--type",
        action="append",
        default=[],
        metavar="COLUMN=TYPE",
        help="Athena type of a tsv or jsonl column, e.g. amount=decimal(38,9) (default string); repeatable",
    )
    parser.add_argument("--since", default="2020-01-01", help="first day of date partitions (default 2020-01-01)")
    parser.add_argument(
        "--current",
        action="store_true",
        help="also print CREATE OR REPLACE VIEW TABLE_current: per key, the change with the highest @version, "
        "without the keys whose last change is a REMOVE (needs @eventName and @version among the columns)",
    )
    parser.add_argument("--key", metavar="COLUMN[,COLUMN]", help="the item's key columns for --current, e.g. pk,sk")
    parser.set_defaults(run=_run)
