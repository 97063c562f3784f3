"""``python -m pipeline sandbox`` (what ``make local`` runs): the README's one command for the whole path."""

from __future__ import annotations

import pytest

from pipeline.cli import main
from pipeline.sinks.storage import Folder

SANDBOX_SETS = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@pytest.mark.moto
def test_sandbox_starts_its_own_server_and_shows_every_change_delivered(tmp_path, monkeypatch, capsys):
    for name in (*SANDBOX_SETS, "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "restored after the test")  # the command points this process at its server
    assert main(["sandbox", "--items", "120", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "2. wrote 120 items, modified 30, deleted 12; forwarded the 162 change records" in printed
    assert "4. read back " in printed and "162 rows for 162 of 162 changes" in printed
    assert "2 failed records under processing-failed/" in printed
    assert "2 records: 0 redriven, 0 dropped (filtered out), 2 failed again, 0 unreadable" in printed
    keys = list(Folder(tmp_path).listing())
    assert any(k.startswith("processing-failed/") for k in keys) and any(k.startswith("2") for k in keys)


@pytest.mark.moto
def test_sandbox_through_dynamodb_streams_and_a_pipe_shows_every_change_delivered(tmp_path, monkeypatch, capsys):
    for name in (*SANDBOX_SETS, "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "restored after the test")
    assert main(["sandbox", "--source", "dynamodb-streams", "--items", "120", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "2. wrote 120 items, modified 30, deleted 12; the pipe read the 162 change records" in printed
    assert "(0 retried, 0 dead-lettered)" in printed
    assert "3. run-local, Direct PUT 'orders-to-lake' -> handler -> s3://local-lake/ with" in printed
    assert "4. read back " in printed and "162 rows for 162 of 162 changes" in printed
    assert "2 failed records under processing-failed/" in printed
    keys = list(Folder(tmp_path).listing())
    assert any(k.startswith("processing-failed/") for k in keys) and any(k.startswith("2") for k in keys)
