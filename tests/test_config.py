"""Configuration: defaults, and a bad value fails at start-up with a message naming the variable and value."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import Config, ConfigError
from pipeline.config import VARIABLES


def test_defaults():
    config = Config.from_env({"PIPELINE_COLUMNS": "id"})
    assert [c.name for c in config.columns] == ["id"]
    assert (config.events, config.image, config.format, config.null) == (
        {"INSERT", "MODIFY", "REMOVE"},
        "auto",
        "csv",
        "",
    )
    assert (config.max_response_bytes, config.reingest, config.reingest_max_attempts) == (6291456, True, 8)
    assert config.partition_keys == () and config.log_level == logging.INFO
    assert Config.from_env({"PIPELINE_FORMAT": "jsonl"}).columns is None  # the whole image


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PIPELINE_FORMAT", "xml", "not one of csv, tsv, jsonl"),
        ("PIPELINE_COLUMNS", "a..b", "empty name in column 'a..b'"),
        ("PIPELINE_COLUMNS", "@nope", "unknown field '@nope'"),
        ("PIPELINE_EVENTS", "INSERT,UPSERT", "not a subset of INSERT, MODIFY, REMOVE"),
        ("PIPELINE_EVENTS", ",", "not a subset"),
        ("PIPELINE_IMAGE", "newest", "not one of auto, new, old, keys"),
        ("PIPELINE_PARTITION_KEYS", "day", "is not name=spec"),
        ("PIPELINE_PARTITION_KEYS", "day=@approximateCreationDateTime|Y-m-d", "is not a strftime format"),
        ("PIPELINE_MAX_RESPONSE_BYTES", "6MB", "not a whole number"),
        ("PIPELINE_MAX_RESPONSE_BYTES", "100", "must be at least 1024"),
        ("PIPELINE_MAX_RESPONSE_BYTES", "7000000", "must be at most 6291456"),
        ("PIPELINE_REINGEST", "yes", "not one of on, off"),
        ("PIPELINE_REINGEST_MAX_ATTEMPTS", "0", "must be at least 1"),
        ("LOG_LEVEL", "LOUD", "not one of DEBUG, INFO"),
    ],
)
def test_bad_values_name_the_variable_and_value(variable, value, message):
    env = {"PIPELINE_COLUMNS": "id", variable: value}
    with pytest.raises(ConfigError) as error:
        Config.from_env(env)
    assert str(error.value).startswith(f"{variable}={value!r}: ")
    assert message in str(error.value)


def test_tsv_null_text_with_a_tab_is_refused():
    with pytest.raises(ConfigError, match=r"PIPELINE_NULL='\\t': null text"):
        Config.from_env({"PIPELINE_COLUMNS": "id", "PIPELINE_FORMAT": "tsv", "PIPELINE_NULL": "\t"})


def test_columns_are_required_for_csv_and_tsv():
    for fmt in ("csv", "tsv"):
        with pytest.raises(ConfigError, match=f"PIPELINE_COLUMNS is required when PIPELINE_FORMAT is {fmt}"):
            Config.from_env({"PIPELINE_FORMAT": fmt})


def test_every_variable_is_documented_in_the_readme():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for variable, (default, _doc) in VARIABLES.items():
        shown = f"`{default}`" if default else "(empty)" if variable == "PIPELINE_NULL" else "(none)"
        assert f"| `{variable}` | {shown} |" in readme


def test_bad_configuration_fails_the_cold_start_naming_the_variable():
    env = {"PATH": os.environ["PATH"], "PIPELINE_COLUMNS": "id", "PIPELINE_EVENTS": "DELETE"}
    command = [sys.executable, "-c", "import handler"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "ConfigError: PIPELINE_EVENTS='DELETE': not a subset of INSERT, MODIFY, REMOVE" in result.stderr
