"""``sandbox``: the whole path on a moto server this command starts and stops."""

from __future__ import annotations

import argparse
import logging
import urllib.request
from typing import Any

from ..budget import LAMBDA_RESPONSE_LIMIT
from ..local import sandbox
from ..local.sandbox import SOURCES, run_sandbox
from .arguments import UsageError, output_folder, whole

__all__ = ["add_sandbox"]


def _sandbox(args: argparse.Namespace) -> int:
    try:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 - a test dependency, needed by this command only
    except ImportError:
        raise UsageError("the sandbox needs moto's server: pip install -e '.[test]' (make local does it)") from None
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        # moto keeps its resources in this process: start from an empty account even if a sandbox ran before
        with urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10):
            pass
        return run_sandbox(url, items=args.items, budget=args.budget, out=args.out, source=args.source)
    finally:
        server.stop()


def add_sandbox(commands: Any) -> None:
    """Register ``sandbox`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "sandbox",
        help="the whole path on a local moto server: DynamoDB -> Kinesis (or a pipe) -> run-local -> S3",
        description=sandbox.__doc__.split("\n\n")[1] if sandbox.__doc__ else None,
    )
    parser.add_argument(
        "--source",
        choices=SOURCES,
        default="kinesis",
        help="kinesis (the default): Kinesis Data Streams for DynamoDB; dynamodb-streams: the "
        "table's DynamoDB stream through a local EventBridge Pipe into a Direct PUT delivery stream",
    )
    parser.add_argument(
        "--items", type=whole(1, 100_000), default=1000, help="items to write, 1 to 100000 (default 1000)"
    )
    parser.add_argument(
        "--budget",
        type=whole(1024, LAMBDA_RESPONSE_LIMIT),
        default=65_536,
        help=f"PIPELINE_MAX_RESPONSE_BYTES, 1024 to {LAMBDA_RESPONSE_LIMIT} (default 65536)",
    )
    parser.add_argument(
        "--out", type=output_folder, help="folder to copy the bucket into (default: a new temporary folder)"
    )
    parser.set_defaults(run=_sandbox)
