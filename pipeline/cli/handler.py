"""``demo``, ``transform`` and ``generate-event``: the handler on the bundled event, on a file, and test events."""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from ..app import firehose_records, make_handler
from ..config import VARIABLES, Config, ConfigError
from ..local.context import LocalContext
from ..local.contract import runtime_size
from ..logs import configure_logging
from ..tools.generate import SOURCES, generate_event
from .arguments import UsageError, input_file, number, output_file, size, use_endpoint, whole

__all__ = ["DEMO_ENV", "add_handler_commands"]

DEMO_ENV = {"PIPELINE_COLUMNS": "event=@eventName,key,name,population,date_mod,ttl=@isTtlDelete"}
_FLAGS = {  # flag -> variable: flags override the environment
    "columns": "PIPELINE_COLUMNS",
    "events": "PIPELINE_EVENTS",
    "image": "PIPELINE_IMAGE",
    "format": "PIPELINE_FORMAT",
    "null": "PIPELINE_NULL",
    "partition_keys": "PIPELINE_PARTITION_KEYS",
    "max_response_bytes": "PIPELINE_MAX_RESPONSE_BYTES",
    "reingest": "PIPELINE_REINGEST",
}


def _config(args: argparse.Namespace, base: Mapping[str, str]) -> Config:
    """The configuration from *base* with the flags given; a bad value is reported by the flag it came from."""
    env = dict(base)
    given = {}
    for flag, variable in _FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            env[variable] = value
            given[variable] = f"--{flag.replace('_', '-')}"
    try:
        return Config.from_env(env)
    except ConfigError as exc:
        flag = given.get(exc.variable or "")
        if flag is not None:
            raise UsageError(f"{flag} {env[exc.variable]!r}: {exc.reason}") from None
        flags = {variable: flag for flag, variable in _FLAGS.items()}
        if exc.variable in flags:
            raise UsageError(f"{exc} (or give --{flags[exc.variable].replace('_', '-')})") from None
        raise


def _load_event(path: str) -> Any:
    raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        where = "standard input" if path == "-" else path
        why = "nested too deep to read" if isinstance(exc, RecursionError) else exc
        raise UsageError(f"{where} is not a JSON file ({why}): give a Firehose event (see generate-event)") from None


def _print_lines(response: Mapping[str, Any], out: TextIO) -> None:
    for entry in response["records"]:
        if entry["result"] == "Ok":
            out.write(base64.b64decode(entry["data"]).decode("utf-8"))


def _print_summary(response: Mapping[str, Any], out: TextIO, never_seen: list[str] | None = None) -> None:
    results = Counter(entry["result"] for entry in response["records"])
    size = runtime_size(response)
    out.write(
        f"\n{len(response['records'])} records: {results['Ok']} Ok, {results['Dropped']} Dropped, "
        f"{results['ProcessingFailed']} ProcessingFailed; response {size:,} bytes\n"
    )
    if never_seen:
        out.write(f"columns never seen (check PIPELINE_COLUMNS / --columns): {', '.join(never_seen)}\n")


def _demo(args: argparse.Namespace) -> int:
    event = json.loads(resources.files("pipeline").joinpath("samples/cities.json").read_text("utf-8"))
    env = {**DEMO_ENV, "PIPELINE_FORMAT": args.format}
    logs = io.StringIO()
    configure_logging(logging.INFO, logs)
    response = make_handler(Config.from_env(env))(event, LocalContext())
    print("# The bundled event: changes to a 'cities' table from a Kinesis data stream, and one junk record.")
    print(f"# Configuration: {' '.join(f'{k}={v}' for k, v in env.items())}")
    print(f"# Output ({args.format}), as Firehose will write it to S3:\n")
    _print_lines(response, sys.stdout)
    _print_summary(response, sys.stdout)
    for line in logs.getvalue().splitlines():
        entry = json.loads(line)
        if entry["message"] == "record failed":
            print(f"  ProcessingFailed {entry['recordId']}: {entry['reason']}")
        elif entry["message"] == "summary":
            print(f"\nThe handler's summary log line:\n{line}")
    return 0


def _transform(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    env.setdefault("PIPELINE_REINGEST", "off")  # a local run never writes to a real stream unless asked
    config = _config(args, env)
    if config.reingest:
        use_endpoint(None)  # AWS_ENDPOINT_URL, if set, must be a URL
    configure_logging(config.log_level, sys.stderr)
    event = _load_event(args.event)
    firehose_records(event)  # a file that is not an event is the user's mistake: one line, before the handler logs
    never_seen: list[str] = []
    response = make_handler(config, on_summary=lambda _fields, names: never_seen.extend(names))(event, LocalContext())
    if args.decode:
        _print_lines(response, sys.stdout)
        _print_summary(response, sys.stderr, never_seen)
    else:
        json.dump(response, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0


def _generate(args: argparse.Namespace) -> int:
    event = generate_event(args.size, args.source, awkward=args.awkward, seed=args.seed)
    text = json.dumps(event)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, "utf-8")
    print(f"{len(event['records'])} records, {len(text):,} bytes of JSON -> {args.output}", file=sys.stderr)
    return 0


def add_handler_commands(commands: Any) -> None:
    """Register ``demo``, ``transform`` and ``generate-event`` on the CLI's subcommands."""
    demo = commands.add_parser("demo", help="run the bundled cities event through the handler")
    demo.add_argument("--format", choices=("csv", "tsv", "jsonl"), default="csv", help="output format (default csv)")
    demo.set_defaults(run=_demo)

    transform = commands.add_parser(
        "transform",
        help="run the handler on a Firehose event file",
        description="Configuration comes from the PIPELINE_* environment variables; flags override them. "
        "Re-ingestion is off unless --reingest on (or PIPELINE_REINGEST=on) is given.",
    )
    transform.add_argument("event", type=input_file, help="a Firehose transformation event (JSON file, or - for stdin)")
    transform.add_argument("--decode", action="store_true", help="print the decoded output lines")
    for flag, variable in _FLAGS.items():
        text = VARIABLES[variable][1].replace("%", "%%")  # argparse formats help with %
        transform.add_argument(f"--{flag.replace('_', '-')}", help=f"{variable}: {text}")
    transform.set_defaults(run=_transform)

    generate = commands.add_parser("generate-event", help="write a realistic Firehose event of DynamoDB changes")
    generate.add_argument(
        "--size",
        type=size(1_000, 1_000_000_000),
        default="1MB",
        help="at most this much JSON: 1MB, 3MB, 6MiB ... (default 1MB)",
    )
    generate.add_argument("--source", choices=SOURCES, default="kinesis", help="how the changes reach Firehose")
    generate.add_argument(
        "--awkward", type=number(0, 1), default=0.1, help="share of records with awkward values, 0 to 1"
    )
    generate.add_argument("--seed", type=whole(0), default=0, help="random seed (default 0)")
    generate.add_argument("-o", "--output", type=output_file, default="-", help="file to write (default: stdout)")
    generate.set_defaults(run=_generate)
