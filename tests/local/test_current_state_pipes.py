"""The current-state view on the DynamoDB Streams path: moto's DynamoDB -> its stream -> local EventBridge Pipe ->
Direct PUT delivery stream -> run-local + handler -> S3, where ``@version`` is the stream's sequence number.

The same writes as the Kinesis proof (tests/local/test_current_state.py): updates, deletes, re-inserts, quick
successive updates. Older changes are put into the delivery stream again after the newer ones (replayed out of
order), the handler re-ingests over a small budget through ``PutRecordBatch``, and two of those answers are lost
at the delivery stream's edge (the fault), so copies are real. The view must equal a final Scan, row by row.
"""

from __future__ import annotations

import base64
import io
import json
from collections import Counter

import pytest
from duck import current_rows, downloaded
from test_current_state import BUDGET, COLUMNS, DATA, NAMES, SETTINGS, TABLE, delivered_rows, scan, write_changes
from test_e2e_pipes import DELIVERY, LostAnswers

from pipeline import Config
from pipeline.local.pipe import Pipe
from pipeline.local.runner import local_handler, run_local
from pipeline.local.sandbox import create_pipe_path
from pipeline.sinks.delivery import Destination
from pipeline.sinks.storage import S3Prefix

pytestmark = pytest.mark.moto

BUCKET = "lake"


def replay_older_changes(delivery: LostAnswers) -> int:
    """Put every superseded change the pipe delivered into the delivery stream again, after the newer ones."""
    by_item: dict[str, list[dict]] = {}
    for rec in list(delivery._queue):  # a peek at what the pipe put
        change = json.loads(base64.b64decode(rec["data"]))
        by_item.setdefault(change["dynamodb"]["Keys"]["id"]["S"], []).append(change)
    older = [
        change
        for changes in by_item.values()
        for change in sorted(changes, key=lambda c: int(c["dynamodb"]["SequenceNumber"]))[:-1]
    ]
    for start in range(0, len(older), 500):
        records = [{"Data": json.dumps(c, ensure_ascii=False).encode()} for c in older[start : start + 500]]
        delivery.put_record_batch(DeliveryStreamName=DELIVERY, Records=records)
    return len(older)


def test_current_state_view_equals_the_table_through_a_pipe_with_replays_and_lost_answers_at_the_edge(aws, tmp_path):
    ddb, sqs, s3 = aws.client("dynamodb"), aws.client("sqs"), aws.client("s3")
    table_stream, _queue = create_pipe_path(
        ddb, sqs, s3, table=TABLE, queue="pipe-dead-letters", bucket=BUCKET, region=aws.region
    )
    write_changes(ddb, NAMES)
    delivery = LostAnswers(DELIVERY)
    stats = Pipe(aws.client("dynamodbstreams"), table_stream, delivery, DELIVERY, batch_size=500).drain()
    assert stats.delivered == stats.records and stats.dead_lettered == 0
    replayed = replay_older_changes(delivery)
    assert replayed > 600 // 3

    config = Config.from_env({"PIPELINE_COLUMNS": COLUMNS, "PIPELINE_MAX_RESPONSE_BYTES": str(BUDGET)})
    columns = [c.name for c in config.columns]
    handler, reingested = local_handler(config, delivery)
    lake = S3Prefix(BUCKET, client=s3)
    delivery.faults = {2: "ServiceUnavailableException", 4: "AccessDeniedException"}
    tally = run_local(
        delivery, handler, Destination(lake, stream=DELIVERY), SETTINGS, reingested=reingested, progress=io.StringIO()
    )
    assert sorted(delivery.lost) == [2, 4] and tally.reingested > 0 and tally.failed == 0

    assert not [key for key in lake.listing() if key.startswith("processing-failed/")]
    rows = [row for key in lake.listing() for row in delivered_rows(lake.get(key), "csv", columns)]
    copies = sum(delivery.lost.values())
    by_event = Counter(r[-1] for r in rows)
    assert len(by_event) == stats.records  # every change arrived ...
    assert len(rows) == stats.records + replayed + copies  # ... with the replayed and the re-ingested copies
    versions: dict[tuple[str, str], set[str]] = {}  # (item, version) -> the changes (eventIDs) with it
    for r in rows:
        versions.setdefault((r[1], r[-2]), set()).add(r[-1])
    assert all(len(v) == 40 and v.isdigit() for _item, v in versions)  # the stream's sequence numbers
    assert all(len(events) == 1 for events in versions.values())

    view = current_rows(config, TABLE, ["id"], downloaded(lake, tmp_path))
    current = sorted((tuple(row[columns.index(name)] for name in DATA) for row in view), key=repr)
    assert current == scan(ddb, "csv")  # equal, row by row, with nothing extra
    assert len(current) == len({c[0] for c in current}) > 600 // 2
