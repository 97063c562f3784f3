"""Flag values checked when the command line is parsed, so a mistake is named before any work starts.

Each function here is an ``argparse`` ``type=``: it turns the text into a value or raises
``argparse.ArgumentTypeError`` with what is wrong and what would do, and argparse names the flag. A mistake
found later, once the flags are parsed, is a :class:`UsageError`; :func:`pipeline.cli.main` prints either as
one line and ends with status 2.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from pathlib import Path

from ..sinks.storage import check_s3_url
from ..tools.generate import parse_size

__all__ = [
    "UsageError",
    "endpoint_url",
    "input_file",
    "kinesis_stream_name",
    "location",
    "name",
    "number",
    "output_file",
    "output_folder",
    "refuse_unused",
    "size",
    "source_location",
    "use_endpoint",
    "whole",
]


class UsageError(Exception):
    """A mistake in what the user asked for: printed as one line, exit status 2."""


def whole(least: int, most: int | None = None) -> Callable[[str], int]:
    """A whole number from *least* to *most*.

    >>> whole(1)("1_000")
    1000
    >>> whole(1)("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: 0 is too small: give a whole number of at least 1
    """

    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} is too small: give a whole number of at least {least}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"{value} is too large: give a whole number of at most {most}")
        return value

    return parse


def number(least: float, most: float) -> Callable[[str], float]:
    """A number from *least* to *most*.

    >>> number(0, 1)("0.25")
    0.25
    >>> number(0, 900)("-1")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: -1 is not a number from 0 to 900
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not least <= value <= most:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{text} is not a number from {least:g} to {most:g}")
        return value

    return parse


def size(least: int, most: int) -> Callable[[str], int]:
    """A size such as ``1MB`` or ``6MiB``, from *least* to *most* bytes.

    >>> size(200_000, 3_000_000)("1MB")
    1000000
    >>> size(200_000, 3_000_000)("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: '0' is outside 0.2MB to 3MB
    """

    def parse(text: str) -> int:
        try:
            value = parse_size(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if not least <= value <= most:
            raise argparse.ArgumentTypeError(f"{text!r} is outside {_human(least)} to {_human(most)}")
        return value

    return parse


def _human(n: int) -> str:
    return f"{n / 1_000_000:g}MB" if n >= 100_000 else f"{n:,} bytes"


def name(
    what: str, pattern: str = r"[A-Za-z0-9_.-]{1,64}", rule: str = "1 to 64 letters, digits, _ . -"
) -> Callable[[str], str]:
    """A name matching *pattern* (by default Firehose's delivery stream names), which *rule* says in words.

    >>> name("a delivery stream name")("orders-to-lake")
    'orders-to-lake'
    >>> name("a delivery stream name")("")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: '' is not a delivery stream name (1 to 64 letters, digits, _ . -)
    """

    def parse(text: str) -> str:
        if not re.fullmatch(pattern, text):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what} ({rule})")
        return text

    return parse


kinesis_stream_name = name(
    "a Kinesis stream name or ARN",
    r"[A-Za-z0-9_.-]{1,128}|arn:[\w-]+:kinesis:[\w-]+:\d{12}:stream/[A-Za-z0-9_.-]{1,128}",
    "1 to 128 letters, digits, _ . -; or arn:aws:kinesis:REGION:ACCOUNT:stream/NAME, ACCOUNT of 12 digits",
)


def _readable_file(text: str) -> Path:
    path = Path(text)
    if not text:
        raise argparse.ArgumentTypeError("an empty file name")
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: give a file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text}: permission denied (cannot read it)")
    return path


def input_file(text: str) -> str:
    """A file that exists and can be read, or ``-`` for standard input.

    >>> input_file("-")
    '-'
    >>> input_file("/nonexistent/event.json")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: /nonexistent/event.json: no such file
    """
    return text if text == "-" else str(_readable_file(text))


def output_file(text: str) -> str:
    """A file that can be written (its folder exists), or ``-`` for standard output.

    >>> output_file("/nonexistent/event.json")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: /nonexistent/event.json: the folder /nonexistent does not exist
    """
    if text == "-":
        return text
    if not text:
        raise argparse.ArgumentTypeError("an empty file name")
    _not_a_url(text, "a local file or - for standard output")
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: the folder {parent} does not exist")
    if not os.access(path if path.exists() else parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text}: permission denied (cannot write it)")
    return text


def refuse_unused(reason: str, *flags: tuple[str, object]) -> None:
    """UsageError naming the *flags* given (their value not None), which *reason* says are of no use here.

    >>> refuse_unused("for --stream", ("--start", "latest"), ("--follow", None))
    Traceback (most recent call last):
    pipeline.cli.arguments.UsageError: --start: for --stream: drop it
    """
    given = [flag for flag, value in flags if value is not None]
    if given:
        raise UsageError(f"{' and '.join(given)}: {reason}: drop {'them' if len(given) > 1 else 'it'}")


def _not_a_url(text: str, wanted: str) -> None:
    """ArgumentTypeError for a URL where a local path is wanted (it would be made into folders named ``s3:``).

    >>> _not_a_url("s3://bucket/", "a local folder")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: 's3://bucket/' is a URL: this takes a local folder
    """
    if "://" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is a URL: this takes {wanted}")


def output_folder(text: str) -> str:
    """A folder to write into: one that exists, or one that can be made.

    >>> output_folder("/etc/passwd")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: /etc/passwd is a file: give a folder (new or existing)
    """
    if not text:
        raise argparse.ArgumentTypeError("an empty folder name")
    _not_a_url(text, "a local folder")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file: give a folder (new or existing)")
    existing = path
    while not existing.exists():  # the nearest folder that exists is where the new ones would be made
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {existing} is a file, so the folder cannot be made")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: permission denied (cannot write into {existing})")
    return text


def location(text: str) -> str:
    """Where output goes: ``s3://bucket[/base/]`` (a valid bucket name) or a local folder.

    >>> location("s3://my-bucket/base/"), location("out/lake")
    ('s3://my-bucket/base/', 'out/lake')
    >>> location("s3://b/")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: 's3://b/': bucket name 'b' has 1 character; bucket names have 3 to 63
    """
    if text.startswith("s3://"):
        try:
            check_s3_url(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    if "://" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a folder nor an s3://bucket/ location")
    return output_folder(text)


def source_location(text: str) -> str:
    """Where input comes from: ``s3://bucket[/prefix]``, or a local file or folder that exists.

    >>> source_location("/nonexistent/processing-failed")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: /nonexistent/processing-failed: no such file or folder
    """
    if text.startswith("s3://"):
        try:
            check_s3_url(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    if "://" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a file, a folder nor an s3://bucket/prefix")
    if not text:
        raise argparse.ArgumentTypeError("an empty path")
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise argparse.ArgumentTypeError(f"{text}: permission denied (cannot read it)")
    return text


def use_endpoint(flag: str | None) -> None:
    """Point every AWS client made from now on at *flag* (``--endpoint-url``), else check ``AWS_ENDPOINT_URL``.

    >>> import os
    >>> os.environ["AWS_ENDPOINT_URL"] = "localhost:4566"
    >>> use_endpoint(None)
    Traceback (most recent call last):
    pipeline.cli.arguments.UsageError: AWS_ENDPOINT_URL='localhost:4566' is not an http:// or https:// URL
    >>> use_endpoint("http://127.0.0.1:5000"); os.environ["AWS_ENDPOINT_URL"]
    'http://127.0.0.1:5000'
    >>> del os.environ["AWS_ENDPOINT_URL"]
    """
    if flag:
        os.environ["AWS_ENDPOINT_URL"] = flag
        return
    given = os.environ.get("AWS_ENDPOINT_URL")
    if given:
        try:
            endpoint_url(given)
        except argparse.ArgumentTypeError:
            raise UsageError(f"AWS_ENDPOINT_URL={given!r} is not an http:// or https:// URL") from None


def endpoint_url(text: str) -> str:
    """An endpoint URL such as ``http://127.0.0.1:5000`` (what ``AWS_ENDPOINT_URL`` holds).

    >>> endpoint_url("localhost:4566")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: 'localhost:4566' is not an http:// or https:// URL
    """
    if not re.fullmatch(r"https?://[^\s/?#]+(/\S*)?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL")
    return text
