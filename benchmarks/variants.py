"""What the benchmarks run: the floor, the naive baseline and the full handler in its configurations.

Every variant is a ``handler(event, context)`` that answers a Firehose transformation event, so the same
event goes through each of them in the same run, and each is compared with the floor measured on it.
"""

from __future__ import annotations

import base64
import json
from binascii import a2b_base64, b2a_base64
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from pipeline import Config, make_handler
from pipeline.local.memory import MemoryStreams
from pipeline.reingest import Reingester, to_source

__all__ = [
    "CSV_COLUMNS",
    "OVER_BOUNDARY",
    "VARIANTS",
    "Variant",
    "floor",
    "full_handler",
    "json_size",
    "lowered_budget",
    "memory_reingester",
    "naive",
    "over_boundary_handler",
]

Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]

#: The csv columns of the "full handler" rows: six attributes (among them the awkward ones: text with commas,
#: quotes and newlines, 38-digit numbers, NULL) and two fields of the change record.
CSV_COLUMNS = "id,customer,amount,quantity,status,note,event=@eventName,at=@approximateCreationDateTime"

#: The "over the boundary" configuration: JSON Lines of the whole image with partition keys. Its output is
#: smaller than the generator's input (whose changes carry both images), so its budget is set below the
#: output (see ``over_boundary_budget`` in conftest.py) to push records over it.
OVER_BOUNDARY = {
    "PIPELINE_FORMAT": "jsonl",
    "PIPELINE_PARTITION_KEYS": "table=@tableName,day=@approximateCreationDateTime|%Y-%m-%d,"
    "hour=@approximateCreationDateTime|%H",
}
_FLOOR_LINE = b"order-00000001,NEW\n"


def floor(event: Mapping[str, Any], _context: Any = None) -> dict[str, Any]:
    """The work no transformation can avoid: decode and parse every record, encode a line, build the response.

    >>> floor({"records": [{"recordId": "a", "data": "eyJ4IjogMX0="}]})
    {'records': [{'recordId': 'a', 'result': 'Ok', 'data': 'b3JkZXItMDAwMDAwMDEsTkVXCg=='}]}
    """
    entries = []
    for record in event["records"]:
        json.loads(a2b_base64(record["data"]))
        entries.append(
            {"recordId": record["recordId"], "result": "Ok", "data": b2a_base64(_FLOOR_LINE, newline=False).decode()}
        )
    return {"records": entries}


def naive(event: Mapping[str, Any], _context: Any = None) -> dict[str, Any]:
    """The common blog script: ``','.join`` of two fields, no quoting, no filter, no budget.

    >>> change = {"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "order-1"}}}}
    >>> data = base64.b64encode(json.dumps(change).encode()).decode()
    >>> base64.b64decode(naive({"records": [{"recordId": "a", "data": data}]})["records"][0]["data"])
    b'INSERT,order-1\\n'
    """
    output = []
    for record in event["records"]:
        change = json.loads(base64.b64decode(record["data"]))
        line = ",".join([change["eventName"], change["dynamodb"]["Keys"]["id"]["S"]]) + "\n"
        output.append(
            {"recordId": record["recordId"], "result": "Ok", "data": base64.b64encode(line.encode()).decode()}
        )
    return {"records": output}


def json_size(value: Any) -> int:
    """Bytes of ``json.dumps(value)``: the size of an event or a response (ASCII, json.dumps' default)."""
    return len(json.dumps(value))


def lowered_budget(event: Mapping[str, Any]) -> int:
    """A response budget the over-the-boundary output does not fit in (that output is about 45 % of *event*)."""
    return json_size(event) // 4


def memory_reingester(event: Mapping[str, Any], context: Any) -> Reingester:
    """Re-ingestion into an in-memory stream: benchmarks never reach AWS, nor import boto3."""
    return to_source(event, context, client=MemoryStreams())


def full_handler(env: Mapping[str, str], *, stdlib: bool) -> Handler:
    """The handler for *env*; *stdlib* forces ``json.loads``, else the default (orjson when installed)."""
    return make_handler(Config.from_env(env), loads=json.loads if stdlib else None, reingester=memory_reingester)


def over_boundary_handler(max_response_bytes: int, *, stdlib: bool) -> Handler:
    """The over-the-boundary configuration with the given response budget."""
    return full_handler({**OVER_BOUNDARY, "PIPELINE_MAX_RESPONSE_BYTES": str(max_response_bytes)}, stdlib=stdlib)


class Variant(NamedTuple):
    """One row of the results: a name, its label and how to make its handler."""

    name: str
    label: str
    make: Callable[[], Handler]


_CSV = {"PIPELINE_COLUMNS": CSV_COLUMNS}
_JSONL = {"PIPELINE_FORMAT": "jsonl"}  # the whole image

#: In the order they run on each event (the floor first). "orjson" is the default ``loads`` (the ``fast``
#: extra, which the bench and test extras install).
VARIANTS = (
    Variant("floor", "floor (stdlib base64 + json)", lambda: floor),
    Variant("naive", "naive blog-style handler", lambda: naive),
    Variant("csv-stdlib", "full handler, csv, stdlib json", lambda: full_handler(_CSV, stdlib=True)),
    Variant("csv-orjson", "full handler, csv, orjson", lambda: full_handler(_CSV, stdlib=False)),
    Variant("jsonl-stdlib", "full handler, jsonl, stdlib json", lambda: full_handler(_JSONL, stdlib=True)),
    Variant("jsonl-orjson", "full handler, jsonl, orjson", lambda: full_handler(_JSONL, stdlib=False)),
)
