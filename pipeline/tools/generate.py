"""Realistic Firehose events of DynamoDB changes, of a chosen size, for trying things and for benchmarks.

Two source kinds, as Firehose delivers them:

* ``kinesis``: DynamoDB -> Kinesis Data Streams -> Firehose. Records in the Kinesis Data Streams for DynamoDB
  format (milliseconds, ``tableName``), with ``kinesisRecordMetadata`` and ``sourceKinesisStreamArn``.
* ``direct``: DynamoDB Streams -> a forwarder -> Firehose Direct PUT. Records in the DynamoDB Streams format
  (seconds, ``eventSourceARN``, ``SequenceNumber``).

About one change in ten (``awkward``) carries values that break naive CSV: commas, quotes, newlines,
non-ASCII text, 38-digit numbers, nested maps, sets and binary.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import uuid
from collections.abc import Iterator
from typing import Any

__all__ = [
    "SOURCES",
    "change_record",
    "firehose_event",
    "firehose_record",
    "generate_event",
    "order_item",
    "parse_size",
]

SOURCES = ("kinesis", "direct")
REGION, ACCOUNT, TABLE = "eu-west-1", "123456789012", "orders"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{TABLE}-changes"
DELIVERY_ARN = f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{TABLE}-to-s3"
TABLE_STREAM_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}/stream/2026-01-01T00:00:00.000"
_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}
_AWKWARD_TEXT = (
    'Müller, "the elder"',
    "line one\nline two\r\nline three",
    "São Paulo — „quoted“, 東京, 🦊",
    'comma,quote",tab\there\\backslash',
    "",
)
_CITIES = ("Zürich", "Kraków", "Reykjavík", "Montréal", "Lisbon", "Austin", "Osaka", "Nairobi")


def parse_size(text: str) -> int:
    """Bytes from ``1MB``, ``3 MB``, ``6MiB``, ``512KiB`` or a plain number.

    >>> parse_size("6MiB"), parse_size("1.5 MB"), parse_size("900")
    (6291456, 1500000, 900)
    """
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    unit = match[2].upper() if match else None
    if not match or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size such as 1MB, 3MB or 6MiB")
    return int(float(match[1]) * _UNITS[unit])


def order_item(rng: random.Random, key: str, awkward: bool) -> dict[str, Any]:
    """One item of the generated ``orders`` table (DynamoDB JSON); *awkward* gives it values that break naive CSV."""
    item: dict[str, Any] = {
        "id": {"S": key},
        "customer": {"S": f"customer-{rng.randrange(10_000):05d}"},
        "amount": {"N": f"{rng.randrange(1, 100_000)}.{rng.randrange(100):02d}"},
        "quantity": {"N": str(rng.randrange(1, 20))},
        "status": {"S": rng.choice(("NEW", "PAID", "SHIPPED", "DELIVERED"))},
        "created": {"S": f"2026-01-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z"},
        "active": {"BOOL": rng.random() < 0.8},
        "tags": {"SS": sorted(rng.sample(("gift", "express", "fragile", "bulk", "repeat"), 2))},
        "address": {"M": {"city": {"S": rng.choice(_CITIES)}, "zip": {"S": f"{rng.randrange(99999):05d}"}}},
        "note": {"NULL": True},
    }
    if awkward:
        item["note"] = {"S": rng.choice(_AWKWARD_TEXT)}
        item["amount"] = {"N": rng.choice(("12345678901234567890123456789012345678", "-1.5E+30", "0.000001"))}
        item["customer"] = {"S": rng.choice(_CITIES) + ", " + rng.choice(_AWKWARD_TEXT)}
        item["history"] = {
            "L": [
                {"M": {"at": {"N": str(_START_MS + i)}, "by": {"S": "ops"}, "ok": {"BOOL": True}}}
                for i in range(rng.randrange(1, 4))
            ]
        }
        item["scores"] = {"NS": ["1", "2.5", "99999999999999999999999999999999999999"]}
        item["thumbnail"] = {"B": base64.b64encode(rng.randbytes(24)).decode()}
        item["blobs"] = {"BS": [base64.b64encode(rng.randbytes(8)).decode() for _ in range(2)]}
    return item


def change_record(rng: random.Random, i: int, source: str = "kinesis", awkward: float = 0.1) -> dict[str, Any]:
    """One realistic change record (INSERT 60 %, MODIFY 30 %, REMOVE 10 %) in the source's format."""
    key = f"order-{i:08d}"
    name = rng.choices(("INSERT", "MODIFY", "REMOVE"), (6, 3, 1))[0]
    odd = rng.random() < awkward
    new = order_item(rng, key, odd)
    old = {**new, "status": {"S": "NEW"}}
    ddb: dict[str, Any] = {"Keys": {"id": {"S": key}}}
    if name != "REMOVE":
        ddb["NewImage"] = new
    if name != "INSERT":
        ddb["OldImage"] = old
    ddb["SizeBytes"] = 120 + len(json.dumps(new)) // 3
    millis = _START_MS + i * 7
    change: dict[str, Any] = {
        "awsRegion": REGION,
        "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
        "eventName": name,
    }
    ttl = name == "REMOVE" and rng.random() < 0.3
    if source == "kinesis":
        ddb = {"ApproximateCreationDateTime": millis, **ddb}
        identity = {"type": "Service", "principalId": "dynamodb.amazonaws.com"} if ttl else None
        change |= {"userIdentity": identity, "recordFormat": "application/json", "tableName": TABLE}
        change |= {"dynamodb": ddb, "eventSource": "aws:dynamodb"}
    else:
        ddb = {"ApproximateCreationDateTime": millis // 1000, **ddb}
        ddb |= {"SequenceNumber": f"{4_000_000_000_000_000_000 + i}", "StreamViewType": "NEW_AND_OLD_IMAGES"}
        change |= {"eventVersion": "1.1", "eventSource": "aws:dynamodb", "dynamodb": ddb}
        if ttl:
            change["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
        change["eventSourceARN"] = TABLE_STREAM_ARN
    return change


def firehose_record(
    payload: bytes, i: int, source: str = "kinesis", partition_key: str | None = None
) -> dict[str, Any]:
    """The Firehose record carrying *payload*, as the transformation Lambda receives it."""
    arrival = _START_MS + i * 7 + 850
    sequence = f"49668{i:051d}"
    rec: dict[str, Any] = {
        "recordId": f"{sequence}{i % 1000:06d}",
        "approximateArrivalTimestamp": arrival,
        "data": base64.b64encode(payload).decode(),
    }
    if source == "kinesis":
        rec["kinesisRecordMetadata"] = {
            "shardId": f"shardId-{i % 4:012d}",
            "partitionKey": partition_key or f"{i:032X}",
            "approximateArrivalTimestamp": arrival,
            "sequenceNumber": sequence,
            "subsequenceNumber": 0,
        }
    return rec


def firehose_event(records: list[dict[str, Any]], source: str = "kinesis") -> dict[str, Any]:
    """A Firehose transformation event around *records*."""
    event: dict[str, Any] = {"invocationId": str(uuid.uuid5(uuid.NAMESPACE_OID, str(len(records))))}
    if source == "kinesis":
        event["sourceKinesisStreamArn"] = STREAM_ARN
    return event | {"deliveryStreamArn": DELIVERY_ARN, "region": REGION, "records": records}


def _records(source: str, awkward: float, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    i = 0
    while True:
        change = change_record(rng, i, source, awkward)
        key = hashlib.md5(change["dynamodb"]["Keys"]["id"]["S"].encode()).hexdigest().upper()  # as DynamoDB does
        yield firehose_record(json.dumps(change).encode(), i, source, partition_key=key)
        i += 1


def generate_event(size: int, source: str = "kinesis", *, awkward: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """An event whose ``json.dumps`` is at most *size* bytes, filled with as many records as fit.

    >>> event = generate_event(20_000, "direct")
    >>> 19_000 < len(json.dumps(event)) <= 20_000, "sourceKinesisStreamArn" in event
    (True, False)
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r} (known: {', '.join(SOURCES)})")
    if not 0 <= awkward <= 1:
        raise ValueError("awkward is a share between 0 and 1")
    records: list[dict[str, Any]] = []
    total = len(json.dumps(firehose_event([], source)))
    for rec in _records(source, awkward, seed):
        grow = len(json.dumps(rec)) + (2 if records else 0)
        if total + grow > size:
            break
        records.append(rec)
        total += grow
    if not records:
        raise ValueError(f"{size} bytes cannot hold even one record: ask for a larger size, e.g. 10KB")
    return firehose_event(records, source)
