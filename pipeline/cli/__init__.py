"""``python -m pipeline``: the command line, a thin layer over the package; nothing imports it.

Each subcommand is registered by the module here named for it:

* ``handler``: ``demo`` (the bundled ``cities`` event), ``transform EVENT.json``, ``generate-event``.
* ``athena``: ``athena-ddl``, the table over the output.
* ``local``: ``run-local``, a local Firehose.
* ``redrive``: ``redrive``, failed records through the pipeline again.
* ``sandbox``: ``sandbox``, the whole path on a moto server.
* ``backfill``: ``backfill`` (a DynamoDB export into the same layout), ``generate-export``.

:func:`main` is the one place errors become messages. Exit status: 0 done; 1 the job ran and failed
(records failed again, changes missing, the handler failed the invocation, AWS refused or timed out); 2 a
mistake in what was asked (flags, configuration, files, credentials, region, endpoint), said in one line;
130 interrupted (Ctrl-C). A traceback is a bug.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn
from urllib.parse import urlsplit

from ..budget import BudgetError
from ..reingest import ReingestError
from .arguments import UsageError
from .athena import add_athena_command
from .backfill import add_backfill_commands
from .handler import add_handler_commands
from .local import add_run_local
from .redrive import add_redrive
from .sandbox import add_sandbox

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_USAGE", "UsageError", "main"]

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
PROG = "python -m pipeline"
# AWS error codes that mean "what you named does not exist, or you may not use it": a mistake to fix, not a failure.
_REFUSALS = ("NotFound", "NoSuch", "AccessDenied", "Unauthorized", "Forbidden", "Invalid", "Validation", "Expired")


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake said in one line (not the usage screen) and exit status 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A value that starts with a minus and a digit ("--size -1MB") is the option's value, which its type
        # then refuses with the reason; argparse's own rule takes only plain negative numbers so ("-1MB" would
        # be "expected one argument"). No option here is spelt with a digit.
        self._negative_number_matcher = re.compile(r"^-\d")

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def _prog() -> str:
    """``python -m pipeline``, or the console script's name (``ddb-firehose-pipeline``) when run as that."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return PROG if not name or name.endswith((".py", "pytest")) or name.startswith("python") else name


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=_prog(), description="Firehose transformation for DynamoDB change data.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_handler_commands(commands)
    add_athena_command(commands)
    add_run_local(commands)
    add_redrive(commands)
    add_sandbox(commands)
    add_backfill_commands(commands)
    return parser


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _aws(exc: BaseException) -> tuple[str, int] | None:
    """What a botocore error means for the user (matched by class name, so botocore is not imported here)."""
    names = _names(exc)
    if not type(exc).__module__.startswith("botocore"):
        return None
    if names & {"NoCredentialsError", "PartialCredentialsError"}:
        return (
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE "
            "(for a local endpoint such as moto, any values do)",
            EXIT_USAGE,
        )
    if "NoRegionError" in names:
        return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), e.g. AWS_REGION=eu-west-1", EXIT_USAGE
    if "InvalidRegionError" in names:
        region = getattr(exc, "kwargs", {}).get("region_name", "")
        return f"{region!r} is not an AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), e.g. eu-west-1", EXIT_USAGE
    if "EndpointConnectionError" in names:
        url = urlsplit(str(getattr(exc, "kwargs", {}).get("endpoint_url", "")))
        endpoint = f"{url.scheme}://{url.netloc}" if url.netloc else ""
        return f"could not connect to {endpoint or 'the AWS endpoint'}: {_connect_advice()}", EXIT_USAGE
    if "ClientError" in names:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        refused = any(word in code for word in _REFUSALS)
        return f"AWS refused: {exc}", EXIT_USAGE if refused else EXIT_FAILED
    return f"AWS call failed: {type(exc).__name__}: {exc}", EXIT_FAILED


def _connect_advice() -> str:
    """What to check when no AWS endpoint answered."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        return "check --endpoint-url / AWS_ENDPOINT_URL and that the service there is running"
    return "check the network, AWS_REGION, or set --endpoint-url / AWS_ENDPOINT_URL for a local service"


def explain(exc: BaseException) -> tuple[str, int] | None:
    """The one-line message and exit status for an error the user can act on; None for a bug.

    >>> explain(FileNotFoundError(2, "No such file or directory", "/tmp/nope.json"))
    ('/tmp/nope.json: no such file or folder', 2)
    >>> explain(KeyError("x")) is None
    True
    """
    if isinstance(exc, ReingestError) and set(exc.codes) == {"connection"}:  # no answer at all
        return f"could not connect to the stream to re-ingest into: {_connect_advice()}", EXIT_USAGE
    if isinstance(exc, BudgetError | ReingestError):
        return f"the handler failed the invocation: {exc}", EXIT_FAILED
    if isinstance(exc, OSError) and exc.filename is not None:
        where = exc.filename
        if isinstance(exc, FileNotFoundError):
            return f"{where}: no such file or folder", EXIT_USAGE
        if isinstance(exc, IsADirectoryError):
            return f"{where} is a folder: give a file", EXIT_USAGE
        if isinstance(exc, NotADirectoryError):
            return f"{where}: a file is where a folder is needed", EXIT_USAGE
        if isinstance(exc, PermissionError):
            return f"{where}: permission denied", EXIT_USAGE
        return f"{where}: {exc.strerror or exc}", EXIT_FAILED
    if isinstance(exc, OSError) and not type(exc).__module__.startswith(("botocore", "urllib3")):
        return f"{exc.strerror or exc}", EXIT_FAILED  # a full disk, a broken connection ...
    aws = _aws(exc)
    if aws is not None:
        return aws
    if isinstance(exc, UsageError | ValueError):  # ConfigError, InvalidEvent: the library checks with ValueError
        cause = exc.__cause__  # an export that could not be read: no connection, no credentials, no region
        advice = _aws(cause) if cause is not None and "ClientError" not in _names(cause) else None
        return (f"{exc}: {advice[0]}" if advice is not None else str(exc)), EXIT_USAGE
    return None


def _flush_stdout() -> None:
    """Write what standard output still holds; OSError saying so if it cannot (a full disk, a closed file)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the interpreter's final flush does not fail again
        raise OSError(exc.errno, f"cannot write to standard output: {exc.strerror or exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status; errors the user can act on end in one line, not a
    traceback (see the module's docstring for the statuses)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as done:  # --help, or a mistake argparse has already said
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    try:
        status: int = args.run(args)
        _flush_stdout()  # what is still buffered is written now, where a failure can still be said
        return status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (| head): not an error worth a message
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the interpreter's final flush does not fail
        return EXIT_FAILED
    except Exception as exc:
        explained = explain(exc)
        if explained is None:
            raise
        message, status = explained
        sys.stdout.flush()
        print(f"error: {message}", file=sys.stderr)
        return status
