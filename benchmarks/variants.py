"""What the benchmarks run: the floor, two peers (a naive blog handler, a Powertools-style one) and this handler.

Every variant is a ``handler(event, context)`` that answers a Firehose transformation event, so the same
event goes through each of them in the same run, and each is compared with the floor measured on it.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from binascii import a2b_base64, b2a_base64
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from pipeline import Config, make_handler
from pipeline.local.memory import MemoryStreams
from pipeline.reingest import Reingester, to_source

__all__ = [
    "CSV4_COLUMNS",
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
    "powertools",
]

Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]

#: The csv columns of the "full handler" rows: six attributes (among them the awkward ones: text with commas,
#: quotes and newlines, 38-digit numbers, NULL) and two fields of the change record.
CSV_COLUMNS = "id,customer,amount,quantity,status,note,event=@eventName,at=@approximateCreationDateTime"
#: Four plain attribute columns: the case projection pushdown helps most.
CSV4_COLUMNS = "id,customer,amount,quantity"

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


_ATTRIBUTES = [spec for spec in CSV_COLUMNS.split(",") if "@" not in spec]


def powertools(event: Mapping[str, Any], _context: Any = None) -> dict[str, Any]:
    """A Powertools-style handler, as its docs suggest writing one: the same eight columns with csv.writer.

    Powertools' Firehose data classes read the event and build the response; boto3's ``TypeDeserializer`` turns
    the columns' attributes into Python values (numbers as ``Decimal``); no filter, no budget, no per-record
    error handling.

    >>> change = {"eventName": "INSERT", "dynamodb": {"ApproximateCreationDateTime": 1, "Keys": {},
    ...           "NewImage": {"id": {"S": "a,b"}, "amount": {"N": "1.50"}}}}
    >>> data = base64.b64encode(json.dumps(change).encode()).decode()
    >>> base64.b64decode(powertools({"records": [{"recordId": "a", "data": data}]})["records"][0]["data"])
    b'"a,b",,1.50,,,,INSERT,1\\n'
    """
    from aws_lambda_powertools.utilities.data_classes import (
        KinesisFirehoseDataTransformationRecord,
        KinesisFirehoseDataTransformationResponse,
        KinesisFirehoseEvent,
    )
    from aws_lambda_powertools.utilities.serialization import base64_from_str
    from boto3.dynamodb.types import TypeDeserializer

    deserialize = TypeDeserializer().deserialize
    result = KinesisFirehoseDataTransformationResponse()
    for record in KinesisFirehoseEvent(dict(event)).records:
        change = record.data_as_json
        ddb = change["dynamodb"]
        image = ddb.get("NewImage") or ddb.get("OldImage") or ddb["Keys"]
        item = {name: deserialize(image[name]) for name in _ATTRIBUTES if name in image}  # the columns' only
        out = io.StringIO()
        row = [item.get(name) for name in _ATTRIBUTES] + [change["eventName"], ddb["ApproximateCreationDateTime"]]
        csv.writer(out, lineterminator="\n").writerow(row)
        result.add_record(
            KinesisFirehoseDataTransformationRecord(record_id=record.record_id, data=base64_from_str(out.getvalue()))
        )
    return result.asdict()


def json_size(value: Any) -> int:
    """Bytes of ``json.dumps(value)``: the size of an event or a response (ASCII, json.dumps' default)."""
    return len(json.dumps(value))


def lowered_budget(event: Mapping[str, Any]) -> int:
    """A response budget the over-the-boundary output does not fit in (that output is about 45 % of *event*)."""
    return json_size(event) // 4


def memory_reingester(event: Mapping[str, Any], context: Any) -> Reingester:
    """Re-ingestion into an in-memory stream: benchmarks never reach AWS, nor import boto3."""
    return to_source(event, context, client=MemoryStreams())


def full_handler(env: Mapping[str, str], *, stdlib: bool = False) -> Handler:
    """The handler for *env*; *stdlib* picks the standard library path, else the default (msgspec)."""
    return make_handler(Config.from_env(env), parser="stdlib" if stdlib else None, reingester=memory_reingester)


def over_boundary_handler(max_response_bytes: int, *, stdlib: bool = False) -> Handler:
    """The over-the-boundary configuration with the given response budget."""
    return full_handler({**OVER_BOUNDARY, "PIPELINE_MAX_RESPONSE_BYTES": str(max_response_bytes)}, stdlib=stdlib)


class Variant(NamedTuple):
    """One row of the results: a name, its label and how to make its handler."""

    name: str
    label: str
    make: Callable[[], Handler]


_CSV = {"PIPELINE_COLUMNS": CSV_COLUMNS}
_CSV4 = {"PIPELINE_COLUMNS": CSV4_COLUMNS}
_CSV_PLAIN = {**_CSV, "PIPELINE_METRICS_NAMESPACE": "off"}  # the summary line without EMF: its cost, by difference
_JSONL = {"PIPELINE_FORMAT": "jsonl"}  # the whole image

#: In the order they run on each event (the floor first). The default install parses with msgspec; "stdlib"
#: is the fallback path, for an environment where msgspec cannot load.
VARIANTS = (
    Variant("floor", "floor (stdlib base64 + json)", lambda: floor),
    Variant("naive", "peer: naive blog-style handler", lambda: naive),
    Variant("powertools", "peer: Powertools-style handler (8 columns)", lambda: powertools),
    Variant("csv4", "this handler, csv, 4 columns", lambda: full_handler(_CSV4)),
    Variant("csv", "this handler, csv, 8 columns", lambda: full_handler(_CSV)),
    Variant("csv4-stdlib", "this handler, csv, 4 columns, stdlib fallback", lambda: full_handler(_CSV4, stdlib=True)),
    Variant("csv-stdlib", "this handler, csv, 8 columns, stdlib fallback", lambda: full_handler(_CSV, stdlib=True)),
    Variant("csv-plain-summary", "this handler, csv, 8 columns, metrics off", lambda: full_handler(_CSV_PLAIN)),
    Variant("jsonl", "this handler, jsonl (whole image)", lambda: full_handler(_JSONL)),
)
