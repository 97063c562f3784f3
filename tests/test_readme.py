"""The README stays true: its Python examples run, and its shell commands work as written."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL)


@pytest.mark.parametrize("code", blocks("python"))
def test_python_examples_run(code, capsys):
    exec(compile(code, "README.md", "exec"), {})  # the README's own example
    printed = capsys.readouterr().out
    for comment in re.findall(r"print\(.*?\)\s+# (.*)", code):
        assert comment in printed


def shell_lines():
    for block in blocks("sh"):
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command.startswith(("make ", "PIPELINE_", ".venv/bin/python")):
                yield command


@pytest.mark.parametrize("command", list(shell_lines()))
def test_shell_commands_work_as_written(command, tmp_path):
    if command.startswith("make "):
        pytest.skip("make demo and make test are what CI runs")  # running them here would recurse
    words = shlex.split(command)
    env = {  # fake credentials, a closed loopback endpoint, no instance metadata: nothing can reach AWS
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    words = [sys.executable if w == ".venv/bin/python" else w for w in words]
    result = subprocess.run(words, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
