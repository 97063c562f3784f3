"""``backfill`` and ``generate-export``: a DynamoDB export into the delivery stream's layout, and a test export."""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any

from ..backfill.manifest import VIEWS, read_export
from ..backfill.run import DEFAULT_ERROR_PREFIX, plan, run_local
from .arguments import UsageError, endpoint_url, location, name, number, source_location, use_endpoint, whole

__all__ = ["add_backfill_commands"]

_ENDPOINT = "AWS endpoint for S3, e.g. a local moto server (default: AWS_ENDPOINT_URL, else AWS)"
MOST_ITEMS, MOST_FILES = 100_000_000, 10_000  # generate-export: about 40 GB of JSON, and Spark-sized file counts
# The masters Spark takes: local, local[N], local[*], local[N,F], local-cluster[N,C,M], yarn, spark:// mesos:// k8s://
_MASTER = r"local(\[(\*|\d+)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|yarn|(spark|mesos|k8s)://\S+"


def _keys(text: str) -> list[str]:
    """``pk`` or ``pk,sk``: the table's partition key, then its sort key if it has one."""
    names = [key.strip() for key in text.split(",")]
    if not 1 <= len(names) <= 2 or not all(names):
        raise argparse.ArgumentTypeError(f"{text!r} is not ATTRIBUTE or ATTRIBUTE,ATTRIBUTE, e.g. id or pk,sk")
    if len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(
            f"{text!r} names {names[0]!r} twice: give the partition key, then the sort key"
        )
    return names


def _master(text: str) -> str:
    """A Spark master URL, checked here: Spark itself refuses a wrong one with a Java stack trace."""
    if not re.fullmatch(_MASTER, text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Spark master: give e.g. local[2] or local[*] (under spark-submit, leave --master out)"
        )
    return text


def _backfill(args: argparse.Namespace) -> int:
    if args.master and args.engine != "spark":
        raise UsageError("--master is for --engine spark: leave it out, or add --engine spark")
    if args.workers and args.engine != "local":
        raise UsageError("--workers is for --engine local: Spark's master says how many (e.g. --master 'local[2]')")
    use_endpoint(args.endpoint_url)
    export = read_export(args.export)
    tasks = plan(
        export,
        args.to,
        os.environ,
        prefix=args.prefix,
        error_prefix=args.error_prefix,
        name=args.name,
        gzip=args.gzip,
        keys=args.keys or [],
    )
    moment = datetime.fromtimestamp(export.export_micros / 1e6, UTC).isoformat(timespec="milliseconds")
    kind = f"incremental export ({export.view}) up to" if export.incremental else "full export at"
    workers = args.workers or os.cpu_count() or 1
    engine = f"spark ({args.master or 'its default master'})" if args.engine == "spark" else f"local, {workers} workers"
    print(
        f"backfill {export.table}: {kind} {moment.replace('+00:00', 'Z')}, {len(export.files):,} data files, "
        f"{export.item_count:,} items -> {args.to} (engine {engine})"
    )
    progress = sys.stderr if not args.quiet else None
    if args.engine == "spark":
        from ..backfill.spark import run_spark  # noqa: PLC0415 - PySpark is loaded only for this engine

        summary = run_spark(tasks, args.master, progress=progress, quiet=args.quiet)
    else:
        summary = run_local(tasks, workers, progress=progress)
    print("\n".join(summary.lines()))
    return 0 if summary.ok else 1


def _generate_export(args: argparse.Namespace) -> int:
    if args.view is not None and not args.incremental:
        raise UsageError("--view is for incremental exports: add --incremental, or leave --view out")
    use_endpoint(args.endpoint_url)
    from ..backfill.generate import generate_export  # noqa: PLC0415 - only this command needs it

    folder = generate_export(
        args.output,
        args.items,
        args.files,
        incremental=args.incremental,
        view=args.view or VIEWS[0],
        awkward=args.awkward,
        seed=args.seed,
    )
    kind = "incremental" if args.incremental else "full"
    print(f"{kind} export of {args.items:,} items in {args.files:,} data files:", file=sys.stderr)
    print(folder)
    return 0


def add_backfill_commands(commands: Any) -> None:
    """Register ``backfill`` and ``generate-export`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "backfill",
        help="transform a DynamoDB export (full or incremental) into the delivery stream's S3 layout",
        description="Configured by the same PIPELINE_* variables as the Lambda; the same stages do the work. "
        "Rows go under the delivery stream's prefix, failed items under the error prefix in Firehose's "
        "processing-failed format (for redrive). Exit status 1 if a data file or an item failed.",
    )
    parser.add_argument(
        "export", type=source_location, help="the export's folder (…/AWSDynamoDB/<ExportId>/): a local folder or s3://"
    )
    parser.add_argument("--to", required=True, type=location, help="a folder or s3://bucket[/base/]")
    parser.add_argument("--engine", choices=("local", "spark"), default="local", help="where to run (default local)")
    parser.add_argument("--workers", type=whole(1), help="local engine: processes (default: the CPU count)")
    parser.add_argument(
        "--master",
        type=_master,
        help="spark engine: the master, e.g. local[2] (default: spark-submit's, else local[*])",
    )
    parser.add_argument("--gzip", action="store_true", help="gzip the objects (names end in .gz)")
    parser.add_argument(
        "--prefix",
        help="Firehose prefix expression for the rows (default: the template's, data/ then the hour folders, "
        "or data/ then name=!{partitionKeyFromLambda:name}/ per partition key)",
    )
    parser.add_argument(
        "--error-prefix", default=DEFAULT_ERROR_PREFIX, help=f"prefix for failed items (default {DEFAULT_ERROR_PREFIX})"
    )
    parser.add_argument(
        "--keys",
        type=_keys,
        metavar="ATTRIBUTE[,ATTRIBUTE]",
        help="full exports: the table's key attributes, e.g. pk,sk (needed with PIPELINE_IMAGE=keys)",
    )
    parser.add_argument(
        "--name", type=name("a name"), default="backfill", help="first part of the objects' names (default backfill)"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress line on stderr (with --engine spark: only Spark's errors)"
    )
    parser.add_argument("--endpoint-url", type=endpoint_url, help=_ENDPOINT)
    parser.set_defaults(run=_backfill)

    generate = commands.add_parser("generate-export", help="write a realistic DynamoDB export (manifests, gzip files)")
    generate.add_argument(
        "--items",
        type=whole(0, MOST_ITEMS),
        default=10_000,
        help=f"items (or changes) in the export, at most {MOST_ITEMS:,} (default 10,000)",
    )
    generate.add_argument(
        "--files",
        type=whole(1, MOST_FILES),
        default=4,
        help=f"data files, at most {MOST_FILES:,}; more than --items leaves some empty, as DynamoDB does (default 4)",
    )
    generate.add_argument("--incremental", action="store_true", help="an incremental export (changes), not a full one")
    generate.add_argument(
        "--view", choices=VIEWS, help=f"with --incremental: the export's view type (default {VIEWS[0]})"
    )
    generate.add_argument("--awkward", type=number(0, 1), default=0.1, help="share of items with awkward values")
    generate.add_argument("--seed", type=whole(0), default=0)
    generate.add_argument(
        "-o", "--output", required=True, type=location, help="folder or s3://bucket[/prefix/] to write it under"
    )
    generate.add_argument("--endpoint-url", type=endpoint_url, help=_ENDPOINT)
    generate.set_defaults(run=_generate_export)
