"""Backfill on the local engine: generated exports, bad exports, failing items, the CLI, and S3 through moto."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
from pathlib import Path

import pytest
from runs import read_store

from pipeline import Config
from pipeline.backfill import ExportError, plan, read_export, run_local, transform_file
from pipeline.backfill.changes import change_loads
from pipeline.backfill.generate import EXPORT_MS, generate_export
from pipeline.cli import main
from pipeline.sinks.storage import Folder, S3Prefix
from pipeline.tools.redrive import redrive, to_store

COLUMNS = "event=@eventName,id,amount,customer,note,at=@approximateCreationDateTime,table=@tableName"
ENV = {"PIPELINE_COLUMNS": COLUMNS}


def export_files(folder: str) -> list[Path]:
    return sorted(Path(folder).parent.parent.rglob("*.json.gz"))


def rows_of(out: Path) -> list[list[str]]:
    rows, failed = read_store(Folder(out))
    assert failed == []
    return rows


def test_generated_export_reads_back_as_dynamodb_writes_it(tmp_path):
    folder = generate_export(str(tmp_path), 1_000, 3)
    export = read_export(folder)
    assert (export.table, export.region, export.export_type, export.item_count) == (
        "orders",
        "eu-west-1",
        "FULL_EXPORT",
        1_000,
    )
    assert export.export_micros == EXPORT_MS * 1000
    assert [f.item_count for f in export.files] == [334, 333, 333]
    for data in export.files:  # md5Checksum: base64 MD5 of the object as stored; the lines are {"Item": ...}
        body = (tmp_path / data.key).read_bytes()
        assert base64.b64encode(hashlib.md5(body).digest()).decode() == data.md5
        lines = gzip.decompress(body).splitlines()
        assert len(lines) == data.item_count and set(json.loads(lines[0])) == {"Item"}
    assert read_export(str(tmp_path)) == export  # the folder holding exactly one export is accepted too


def test_full_export_rows_have_the_export_time_and_table(tmp_path):
    folder = generate_export(str(tmp_path / "export"), 500, 2, awkward=0.3)
    summary = run_local(plan(read_export(folder), str(tmp_path / "out"), ENV), workers=1)
    assert (summary.files, summary.items, summary.rows, summary.failed, summary.ok) == (2, 500, 500, 0, True)
    keys = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    stems = sorted(p.name.split(".")[0] for p in export_files(folder))
    assert keys == [f"data/2026/01/02/00/backfill-01767312000000-00000000-{stem}" for stem in stems]
    rows = rows_of(tmp_path / "out")
    assert len(rows) == 500
    assert {(r[0], r[5], r[6]) for r in rows} == {("INSERT", "2026-01-02T00:00:00.000Z", "orders")}
    assert sorted(r[1] for r in rows) == [f"order-{i:08d}" for i in range(500)]
    assert any("\n" in r[4] for r in rows) and any(len(r[2]) == 38 for r in rows)  # awkward values, read back


def test_a_rerun_overwrites_with_the_same_bytes_and_gzip_is_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    folder = generate_export(str(tmp_path / "export"), 300, 3)
    out = tmp_path / "out"
    for _ in range(2):
        assert main(["backfill", folder, "--to", str(out), "--gzip", "--quiet", "--workers", "2"]) == 0
        digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}
        assert len(digests) == 3 and all(name.endswith(".gz") for name in digests)
    assert digests == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        ("NEW_AND_OLD_IMAGES", {"INSERT", "MODIFY", "REMOVE"}),
        ("NEW_IMAGE", {"MODIFY", "REMOVE"}),  # no OldImage: a NewImage is MODIFY, keys alone REMOVE
    ],
)
def test_incremental_export_changes_by_view_type(tmp_path, view, expected):
    folder = generate_export(str(tmp_path / "export"), 400, 2, incremental=True, view=view)
    export = read_export(folder)
    assert export.incremental and export.view == view
    assert all(f.key.startswith("AWSDynamoDB/data/") for f in export.files)  # shared data folder
    env = {"PIPELINE_COLUMNS": "event=@eventName,id,status,at=@approximateCreationDateTime", "PIPELINE_NULL": "-"}
    run_local(plan(export, str(tmp_path / "out"), env), workers=1)
    rows = rows_of(tmp_path / "out")
    assert len(rows) == 400 and {r[0] for r in rows} == expected
    # each change at its own write time, in the hour folder of that time
    lines = [json.loads(line) for p in export_files(folder) for line in gzip.decompress(p.read_bytes()).splitlines()]
    times = sorted(int(doc["Metadata"]["WriteTimestampMicros"]["N"]) // 1000 for doc in lines)
    assert times[0] < times[-1]
    assert {r[3][:13] for r in rows} == {"2026-01-01T23"}
    assert {p.parent.name for p in (tmp_path / "out").rglob("*") if p.is_file()} == {"23"}
    removes = [r for r in rows if r[0] == "REMOVE"]
    assert removes and all(r[2] == ("NEW" if view == "NEW_AND_OLD_IMAGES" else "-") for r in removes)


def test_incremental_rules_on_single_lines():
    loads = change_loads("t", "eu-west-1", 0, incremental=True)
    meta = '"Metadata": {"WriteTimestampMicros": {"N": "1767225600000001"}}, "Keys": {"k": {"S": "a"}}'
    image = '{"k": {"S": "a"}}'
    cases = {
        f'{{{meta}, "NewImage": {image}}}': "INSERT",
        f'{{{meta}, "NewImage": {image}, "OldImage": {image}}}': "MODIFY",
        f'{{{meta}, "OldImage": {image}}}': "REMOVE",
        f"{{{meta}}}": "REMOVE",
    }
    for line, name in cases.items():
        change = loads(line.encode())
        assert change["eventName"] == name
        assert change["dynamodb"]["ApproximateCreationDateTime"] == 1767225600000001
    assert change_loads("t", "r", 0, incremental=True, view="NEW_IMAGE")(f'{{{meta}, "NewImage": {image}}}'.encode())[
        "eventName"
    ] == ("MODIFY")


def corrupt(folder: str, how: str) -> None:
    path = export_files(folder)[0]
    body = gzip.decompress(path.read_bytes())
    if how == "drop a line":
        body = b"\n".join(body.splitlines()[:-1]) + b"\n"
    elif how == "truncate":
        path.write_bytes(path.read_bytes()[:-40])
        return
    elif how == "garbage line":
        lines = body.splitlines()
        lines[3] = b'{"Item": {"id": {"S": "broken"}, oops'
        body = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(body, mtime=0))


@pytest.mark.parametrize(
    ("how", "problem"),
    [
        ("drop a line", "checksum mismatch"),
        ("truncate", "checksum mismatch"),
    ],
)
def test_damaged_data_files_are_refused_whole(tmp_path, how, problem):
    folder = generate_export(str(tmp_path / "export"), 200, 2)
    corrupt(folder, how)
    summary = run_local(plan(read_export(folder), str(tmp_path / "out"), ENV), workers=1)
    assert not summary.ok and len(summary.problems) == 1 and problem in summary.problems[0][1]
    assert summary.files == 2 and summary.rows == 100  # the other file is done; nothing of this one is written


def test_a_count_mismatch_is_refused_even_with_a_matching_checksum(tmp_path):
    folder = generate_export(str(tmp_path / "export"), 200, 2)
    manifest = Path(folder) / "manifest-files.json"
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    entries[0]["itemCount"] += 1
    entries[1]["itemCount"] -= 1
    manifest.write_text("".join(json.dumps(e) + "\n" for e in entries))
    summary = run_local(plan(read_export(folder), str(tmp_path / "out"), ENV), workers=1)
    assert sorted(why for _, why in summary.problems) == [
        "holds 100 items, manifest-files.json says 101: truncated?",
        "holds 100 items, manifest-files.json says 99: truncated?",
    ]
    assert summary.rows == 0 and not (tmp_path / "out").exists()


def test_bad_exports_are_refused_with_one_line_and_status_2(tmp_path, capsys, monkeypatch):
    folder = generate_export(str(tmp_path / "export"), 50, 2)
    summary_path = Path(folder) / "manifest-summary.json"
    out = str(tmp_path / "out")

    def refused(message: str) -> None:
        assert main(["backfill", folder, "--to", out]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and message in err, err

    summary = json.loads(summary_path.read_text())
    summary_path.write_text(json.dumps(summary | {"outputFormat": "ION"}))
    refused("is an ION export; backfill reads DYNAMODB_JSON exports")
    summary_path.write_text(json.dumps(summary | {"itemCount": 49}))
    refused("manifest-files.json lists 50 items but manifest-summary.json says 49")
    summary_path.write_text(json.dumps(summary))
    refused("PIPELINE_COLUMNS is required when PIPELINE_FORMAT is csv")
    monkeypatch.setenv("PIPELINE_COLUMNS", "id")
    monkeypatch.setenv("PIPELINE_FORMAT", "iceberg")
    monkeypatch.setenv("PIPELINE_ICEBERG_TABLE", "analytics.orders")
    refused("PIPELINE_FORMAT=iceberg is for Firehose's iceberg destination; backfill writes objects")
    monkeypatch.delenv("PIPELINE_FORMAT")
    monkeypatch.delenv("PIPELINE_ICEBERG_TABLE")
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    assert main(["backfill", str(tmp_path / "export"), "--to", out, "--prefix", "!{partitionKeyFromLambda:x}/"]) == 2
    assert "PIPELINE_PARTITION_KEYS does not define" in capsys.readouterr().err
    missing = export_files(folder)[1]
    missing.rename(tmp_path / "elsewhere.json.gz")
    refused(f"data file {missing.relative_to(tmp_path / 'export')} listed in manifest-files.json is missing")
    (tmp_path / "empty").mkdir()
    assert main(["backfill", str(tmp_path / "empty"), "--to", out]) == 2
    assert "no manifest-summary.json there" in capsys.readouterr().err
    assert main(["backfill", str(tmp_path / "nothing"), "--to", out, "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file or folder" in err


@pytest.mark.parametrize("workers", [1, 2])
def test_a_destination_that_refuses_the_first_objects_stops_the_run_before_reading_the_rest(tmp_path, workers):
    """Injected at the edge: a file stands where the destination folder should be made, so every write fails."""
    folder = generate_export(str(tmp_path / "export"), 400, 8)
    (tmp_path / "in-the-way").write_text("x")
    counted: list[object] = []
    with pytest.raises(ExportError, match=r"cannot write to .*in-the-way/lake \(NotADirectoryError\): nothing was"):
        run_local(
            plan(read_export(folder), str(tmp_path / "in-the-way" / "lake"), ENV), workers, on_result=counted.append
        )
    assert counted == []  # no file's result was counted: the run stopped at the first


def test_the_key_image_and_keys_are_refused_where_they_cannot_apply(tmp_path, capsys, monkeypatch):
    """A full export's items carry no Keys, so PIPELINE_IMAGE=keys needs --keys; an incremental export's changes
    carry them, so --keys there would be ignored: both are one line and status 2, before anything is written."""
    full = generate_export(str(tmp_path / "full"), 20, 1)
    incremental = generate_export(str(tmp_path / "incremental"), 20, 1, incremental=True)
    out = tmp_path / "out"
    monkeypatch.setenv("PIPELINE_COLUMNS", "id")
    monkeypatch.setenv("PIPELINE_IMAGE", "keys")
    assert main(["backfill", full, "--to", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PIPELINE_IMAGE=keys on a full export" in err and "--keys pk,sk" in err
    monkeypatch.delenv("PIPELINE_IMAGE")
    assert main(["backfill", incremental, "--to", str(out), "--quiet", "--keys", "id"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--keys is for full exports" in err
    assert not out.exists()
    monkeypatch.setenv("PIPELINE_IMAGE", "keys")  # what --keys is for: rows of the key
    assert main(["backfill", full, "--to", str(out), "--quiet", "--keys", "id", "--workers", "1"]) == 0
    rows, failed = read_store(Folder(out))
    assert len(rows) == 20 and all(row[0] for row in rows) and not failed


def test_a_garbage_line_and_a_failing_item_land_in_the_error_folder_for_redrive(tmp_path, monkeypatch, capsys):
    """Injected at the edge: one line of a data file is not JSON, and one item lacks its partition key's value."""
    folder = generate_export(str(tmp_path / "export"), 120, 2)
    corrupt(folder, "garbage line")
    path = export_files(folder)[1]
    lines = gzip.decompress(path.read_bytes()).splitlines()
    doc = json.loads(lines[5])
    del doc["Item"]["status"]
    lines[5] = json.dumps(doc).encode()
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", mtime=0))
    manifest = Path(folder) / "manifest-files.json"  # the checksums are recomputed: only the items are bad
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    for entry in entries:
        body = (tmp_path / "export" / entry["dataFileS3Key"]).read_bytes()
        entry["md5Checksum"] = base64.b64encode(hashlib.md5(body).digest()).decode()
    manifest.write_text("".join(json.dumps(e) + "\n" for e in entries))

    monkeypatch.setenv("PIPELINE_COLUMNS", "event=@eventName,id,status")
    monkeypatch.setenv("PIPELINE_PARTITION_KEYS", "status=status")
    out = tmp_path / "lake"
    assert main(["backfill", folder, "--to", str(out), "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "2 files, 120 items: 118 rows, 0 dropped (filtered out), 2 failed" in printed
    assert ":4: parse: not valid JSON" in printed and "partition key 'status' has no value" in printed
    rows, failed = read_store(Folder(out))
    assert len(rows) == 118 and len(failed) == 2
    assert {f.error_code for f in failed} == {"Lambda.ProcessingFailedStatus"}
    assert all(k.startswith("processing-failed/processing-failed/2026/01/02/") for k in Folder(out).listing("proc"))

    # the item that failed is kept as its change record: after a fix of the configuration, redrive takes it
    config = Config.from_env({"PIPELINE_COLUMNS": "event=@eventName,id,status", "PIPELINE_NULL": "none"})
    errors = Folder(out)
    report = redrive(errors, errors.listing("processing-failed/"), config, to_store_at(tmp_path / "redriven"))
    assert (report.records, report.redriven, len(report.failed)) == (2, 1, 1)
    assert rows_of(tmp_path / "redriven")[0][0::2] == ["INSERT", "none"]


def to_store_at(path: Path):
    from pipeline.sinks.delivery import Destination

    return to_store(Destination(Folder(path)))


def test_filtered_events_are_counted_as_dropped(tmp_path):
    folder = generate_export(str(tmp_path / "export"), 100, 1)
    env = {**ENV, "PIPELINE_EVENTS": "MODIFY,REMOVE"}
    summary = run_local(plan(read_export(folder), str(tmp_path / "out"), env), workers=1)
    assert (summary.items, summary.rows, summary.dropped, summary.ok) == (100, 0, 100, True)
    assert not (tmp_path / "out").exists()


def test_transform_file_says_why_it_cannot_read_a_file(tmp_path):
    folder = generate_export(str(tmp_path / "export"), 10, 1)
    (task,) = plan(read_export(folder), str(tmp_path / "out"), ENV)
    export_files(folder)[0].unlink()
    assert transform_file(task).problem == "cannot read it (FileNotFoundError)"


def test_a_checksum_of_the_uncompressed_content_is_accepted_too(tmp_path):
    """The documentation does not say what md5Checksum covers: the .gz as stored, or what it holds."""
    folder = generate_export(str(tmp_path / "export"), 200, 2)
    manifest = Path(folder) / "manifest-files.json"
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    plain = gzip.decompress((Path(folder).parent.parent / entries[0]["dataFileS3Key"]).read_bytes())
    entries[0]["md5Checksum"] = base64.b64encode(hashlib.md5(plain).digest()).decode()
    manifest.write_text("".join(json.dumps(e) + "\n" for e in entries))
    summary = run_local(plan(read_export(folder), str(tmp_path / "out"), ENV), workers=1)
    assert summary.ok and summary.rows == 200


class BreakingStream:
    """A stored object's stream that gives *after* bytes, then fails as a lost connection would."""

    def __init__(self, stream, after: int) -> None:
        self.stream, self.left = stream, after

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            raise ConnectionResetError(104, "Connection reset by peer")
        data = self.stream.read(min(n, self.left) if n >= 0 else self.left)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.stream.close()


def test_a_connection_lost_mid_file_fault_injected_in_the_stores_stream_refuses_the_file_whole(tmp_path, monkeypatch):
    folder = generate_export(str(tmp_path / "export"), 2_000, 1)
    (task,) = plan(read_export(folder), str(tmp_path / "out"), ENV)
    opened = Folder.open
    monkeypatch.setattr(Folder, "open", lambda self, key: BreakingStream(opened(self, key), after=20_000))
    result = transform_file(task)
    assert result.problem == "cannot read it (ConnectionResetError)" and result.rows == 0
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("how", "name"), [("truncate", "EOFError"), ("flip a byte", "BadGzipFile")])
def test_a_damaged_gzip_file_without_a_checksum_is_refused_whole(tmp_path, how, name):
    folder = generate_export(str(tmp_path / "export"), 2_000, 1)
    (task,) = plan(read_export(folder), str(tmp_path / "out"), ENV)
    path = export_files(folder)[0]
    body = bytearray(path.read_bytes())
    if how == "truncate":
        del body[-len(body) // 3 :]
    else:
        body[-6] ^= 0xFF  # the trailer's CRC: every item reads, the file's end does not
    path.write_bytes(bytes(body))
    result = transform_file(task._replace(md5=None))  # no checksum to tell: reading the file must
    assert result.problem == f"not a readable gzip file ({name}): truncated or damaged?"
    assert not (tmp_path / "out").exists()


def test_memory_does_not_grow_with_the_data_file_its_rows_are_spooled_to_disk(tmp_path, monkeypatch):
    """A data file is read as a stream and its rows kept in files until it is known to be whole: what a worker
    holds is a buffer and a few MB of rows (lowered here to 64 KB, so that small files show it)."""
    import tracemalloc

    from pipeline.backfill import spool

    monkeypatch.setattr(spool, "_HELD_BYTES", 64 << 10)
    peaks, sizes = [], []
    for items in (5_000, 20_000):
        folder = generate_export(str(tmp_path / f"export-{items}"), items, 1)
        (task,) = plan(read_export(folder), str(tmp_path / f"out-{items}"), ENV)
        sizes.append(len(gzip.decompress(export_files(folder)[0].read_bytes())))
        tracemalloc.start()
        try:
            result = transform_file(task)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert (result.problem, result.items, result.rows) == (None, items, items)
        assert len(rows_of(tmp_path / f"out-{items}")) == items
    # Holding the file and its rows took about three times the file, and grew with it
    assert peaks[1] - peaks[0] < (sizes[1] - sizes[0]) / 20, (peaks, sizes)


@pytest.mark.parametrize("gzipped", [False, True])
def test_spooled_objects_are_the_same_bytes_however_often_they_were_flushed(tmp_path, monkeypatch, gzipped):
    """Many objects (a partition per status and day), flushed after every line, now and then, or never: the same
    objects."""
    from pipeline.backfill import spool

    folder = generate_export(str(tmp_path / "export"), 600, 1, incremental=True)
    env = {**ENV, "PIPELINE_PARTITION_KEYS": "status=status,day=@approximateCreationDateTime|%Y-%m-%d"}
    outputs = []
    for held in (16 << 20, 1, 200):
        monkeypatch.setattr(spool, "_HELD_BYTES", held)
        out = tmp_path / f"out-{held}"
        assert run_local(plan(read_export(folder), str(out), env, gzip=gzipped), workers=1).ok
        outputs.append({key: Folder(out).get(key) for key in Folder(out).listing()})
    assert len(outputs[0]) > 3 and outputs[0] == outputs[1] == outputs[2]
    if gzipped:  # what gzip.compress(body, mtime=0) gives, as before the rows were spooled
        assert all(body == gzip.compress(gzip.decompress(body), mtime=0) for body in outputs[0].values())


@pytest.mark.moto
def test_export_and_output_in_s3_through_the_moto_server(aws, tmp_path, monkeypatch, capsys):
    s3 = aws.client("s3")
    for bucket in ("exports", "lake"):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    folder = generate_export("s3://exports/tables/orders", 2_000, 4, awkward=0.3)
    assert folder == "s3://exports/tables/orders/AWSDynamoDB/01767312000000-00000000/"
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    monkeypatch.setenv("PIPELINE_PARTITION_KEYS", "day=@approximateCreationDateTime|%Y-%m-%d")
    assert main(["backfill", folder, "--to", "s3://lake/orders/", "--workers", "2", "--quiet"]) == 0
    assert "4 files, 2,000 items: 2,000 rows" in capsys.readouterr().out
    lake = S3Prefix("lake", "orders/", client=s3)
    keys = list(lake.listing())
    assert len(keys) == 4 and all(k.startswith("data/day=2026-01-02/backfill-01767312000000-00000000-") for k in keys)
    rows = [row for key in keys for row in csv.reader(io.StringIO(lake.get(key).decode(), newline=""))]
    assert sorted(r[1] for r in rows) == [f"order-{i:08d}" for i in range(2_000)]
    with pytest.raises(ExportError, match="is missing"):
        s3.delete_object(Bucket="exports", Key=f"tables/orders/{read_export(folder).files[0].key}")
        read_export(folder)


def test_backfilled_versions_sort_before_a_later_stream_change(tmp_path):
    """@version of a backfilled row (the export time, in µs) < that of any change the stream carries after it."""
    full = generate_export(str(tmp_path / "full"), 20, 1)
    incremental = generate_export(str(tmp_path / "incremental"), 20, 1, incremental=True)
    env = {"PIPELINE_COLUMNS": "id,v=@version,at=@approximateCreationDateTime"}
    for folder, out in ((full, "full-out"), (incremental, "incremental-out")):
        assert run_local(plan(read_export(folder), str(tmp_path / out), env), workers=1).ok
    backfilled = rows_of(tmp_path / "full-out") + rows_of(tmp_path / "incremental-out")
    assert {r[1] for r in rows_of(tmp_path / "full-out")} == {f"{EXPORT_MS * 1000:020d}"}

    # The stream's change of order-00000003, 1 ms after the export, at the stream's default (ms) precision
    from conftest import firehose_event, outputs, run

    change = {
        "eventName": "MODIFY",
        "tableName": "orders",
        "dynamodb": {
            "ApproximateCreationDateTime": EXPORT_MS + 1,
            "Keys": {"id": {"S": "order-00000003"}},
            "NewImage": {"id": {"S": "order-00000003"}},
        },
    }
    (later,) = outputs(run(firehose_event([json.dumps(change).encode()]), **env))
    stream_row = next(csv.reader(io.StringIO(later.decode(), newline="")))
    assert all(len(r[1]) == len(stream_row[1]) == 20 for r in backfilled)  # fixed width: text order is time order
    assert max(r[1] for r in backfilled) < stream_row[1]
    latest = max([*backfilled, stream_row], key=lambda r: r[1])  # what a current-state view picks per key
    assert latest == stream_row


@pytest.mark.moto
def test_missing_buckets_are_one_line_errors_not_tracebacks(aws, tmp_path, monkeypatch, capsys):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="exports", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    folder = generate_export("s3://exports/", 100, 2)
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    assert main(["backfill", "s3://no-such-bucket/AWSDynamoDB/0123-ab/", "--to", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "error: cannot read the export at s3://no-such-bucket/AWSDynamoDB/0123-ab/ (NoSuchBucket)\n"
    assert main(["backfill", folder, "--to", "s3://no-such-lake/", "--quiet", "--workers", "1"]) == 2
    assert capsys.readouterr().err == (
        "error: cannot write to s3://no-such-lake/ (NoSuchBucket): nothing was written, so the run "
        "stops rather than read the 1 data files left for nothing\n"
    )


def test_the_current_state_view_over_backfill_and_stream_together(tmp_path):
    """One table over both: the backfilled items, then the stream's changes after the export (and one before it,
    arriving late): the current-state view (athena-ddl --current, run in DuckDB) gives each key's last state."""
    from conftest import firehose_event, outputs, run
    from duck import current_rows

    env = {"PIPELINE_COLUMNS": "event=@eventName,id,status,@version"}
    folder = generate_export(str(tmp_path / "export"), 30, 2)
    assert run_local(plan(read_export(folder), str(tmp_path / "lake"), env), workers=1).ok
    backfilled = {r[1]: r[2] for r in rows_of(tmp_path / "lake")}

    def change(name: str, key: str, at_ms: int, status: str | None) -> bytes:
        ddb = {"ApproximateCreationDateTime": at_ms, "Keys": {"id": {"S": key}}}
        image = {"id": {"S": key}, "status": {"S": status or "gone"}}
        ddb |= {"OldImage": image} if name == "REMOVE" else {"NewImage": image}
        return json.dumps({"eventName": name, "tableName": "orders", "dynamodb": ddb}).encode()

    stream = [
        change("MODIFY", "order-00000001", EXPORT_MS + 1, "REFUNDED"),
        change("REMOVE", "order-00000002", EXPORT_MS + 2, None),
        change("INSERT", "order-00000099", EXPORT_MS + 3, "NEW"),
        change("MODIFY", "order-00000003", EXPORT_MS - 5_000, "STALE"),  # before the export, delivered late
    ]
    (tmp_path / "lake" / "stream").mkdir()
    (tmp_path / "lake" / "stream" / "part-1").write_bytes(b"".join(outputs(run(firehose_event(stream), **env))))

    files = sorted(p for p in (tmp_path / "lake").rglob("*") if p.is_file())
    current = {row[1]: (row[0], row[2]) for row in current_rows(Config.from_env(env), "orders", ["id"], files)}
    expected = {key: ("INSERT", status) for key, status in backfilled.items()}
    expected |= {"order-00000001": ("MODIFY", "REFUNDED"), "order-00000099": ("INSERT", "NEW")}
    del expected["order-00000002"]
    assert current == expected


def _edit_manifest(folder: str, edit) -> None:
    manifest = Path(folder) / "manifest-files.json"
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    edit(entries)
    manifest.write_text("".join(json.dumps(e) + "\n" for e in entries))


def _edit_summary(folder: str, **fields) -> None:
    path = Path(folder) / "manifest-summary.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | fields))


def _listed_twice(entries: list) -> None:
    entries.append(dict(entries[0]))


def _a_folder(folder: str) -> str:
    path = export_files(folder)[0]
    path.unlink()
    path.mkdir()
    return str(path.relative_to(Path(folder).parent.parent))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: _edit_summary(f, itemCount="50"), 'manifest-summary.json: itemCount is "50" (text), not a whole'),
        (lambda f: _edit_summary(f, itemCount=50.5), "manifest-summary.json: itemCount is 50.5 (a decimal number)"),
        (lambda f: _edit_summary(f, itemCount=True), "manifest-summary.json: itemCount is true (true or false)"),
        (
            lambda f: _edit_manifest(f, lambda e: e[0].update(md5Checksum=5)),
            "manifest-files.json line 1: md5Checksum is 5 (a number), not text (a base64 MD5)",
        ),
        (
            lambda f: _edit_manifest(f, lambda e: e[0].update(itemCount="25")),
            'manifest-files.json line 1: itemCount is "25" (text), not a whole number',
        ),
        (
            lambda f: (_edit_manifest(f, lambda e: e[0].update(itemCount=-1)), _edit_summary(f, itemCount=24)),
            "manifest-files.json line 1: itemCount is -1, negative",
        ),
        (
            lambda f: _edit_manifest(f, lambda e: e[1].pop("dataFileS3Key")),
            "manifest-files.json line 2 has no dataFileS3Key",
        ),
        (
            lambda f: (_edit_manifest(f, _listed_twice), _edit_summary(f, itemCount=75)),
            "twice: DynamoDB lists each once (remove the repeated line)",
        ),
    ],
)
def test_manifest_fields_of_the_wrong_type_or_repeated_are_refused_with_one_line(
    tmp_path, capsys, monkeypatch, damage, message
):
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    folder = generate_export(str(tmp_path / "export"), 50, 2)
    damage(folder)
    assert main(["backfill", folder, "--to", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("empty", [False, True])
def test_a_data_file_that_is_a_folder_is_said_to_be_one(tmp_path, capsys, monkeypatch, empty):
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    folder = generate_export(str(tmp_path / "export"), 50, 2)
    key = _a_folder(folder)
    if not empty:
        (tmp_path / "export" / key / "inside.json.gz").write_bytes(b"")
    assert main(["backfill", folder, "--to", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"error: data file {key} listed in manifest-files.json is a folder: it should be a file of the export\n"
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--keys", ""], "argument --keys: '' is not ATTRIBUTE or ATTRIBUTE,ATTRIBUTE, e.g. id or pk,sk"),
        (["--keys", "id,,sk"], "argument --keys: 'id,,sk' is not ATTRIBUTE or ATTRIBUTE,ATTRIBUTE"),
        (["--keys", "pk,sk,id"], "argument --keys: 'pk,sk,id' is not ATTRIBUTE or ATTRIBUTE,ATTRIBUTE"),
        (["--keys", "id,id"], "argument --keys: 'id,id' names 'id' twice: give the partition key, then the sort key"),
        (["--engine", "spark", "--master", "nonsense://x"], "argument --master: 'nonsense://x' is not a Spark master"),
        (["--engine", "spark", "--master", "local[two]"], "give e.g. local[2] or local[*] (under spark-submit, leave"),
    ],
)
def test_bad_keys_and_masters_are_refused_with_one_line_and_status_2(tmp_path, capsys, flags, message):
    folder = generate_export(str(tmp_path / "export"), 10, 1)
    assert main(["backfill", folder, "--to", str(tmp_path / "out"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--items", "99999999999999"],
            "argument --items: 99999999999999 is too large: give a whole number of at most",
        ),
        (["--files", "10000000"], "argument --files: 10000000 is too large: give a whole number of at most 10000"),
    ],
)
def test_generate_export_refuses_sizes_it_would_not_finish(tmp_path, capsys, flags, message):
    assert main(["generate-export", "-o", str(tmp_path / "export"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "export").exists()
