"""examples/explore.ipynb, executed by a real Jupyter kernel (nbclient), so the notebook never rots."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "explore.ipynb"


def test_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    tags = [cell.metadata.get("tags", []) for cell in code]
    assert all(len(t) == 1 for t in tags) and len({t[0] for t in tags}) == len(tags)  # one unique tag a cell


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each code cell's text output (streams, then results), by the cell's tag, after running the notebook."""
    jupyter = tmp_path_factory.mktemp("jupyter")
    kernel = jupyter / "kernels" / "pipeline-test"
    kernel.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "language": "python"}
    (kernel / "kernel.json").write_text(json.dumps({**spec, "display_name": "this venv"}))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JUPYTER_PATH", str(jupyter))  # this interpreter, not whatever 'python3' kernel is installed
        env.setenv("JUPYTER_PLATFORM_DIRS", "1")
        env.setenv("IPYTHONDIR", str(jupyter / "ipython"))
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        client = NotebookClient(
            notebook, timeout=60, kernel_name="pipeline-test", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
        )
        client.execute()
    texts = {}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"]
            parts = [o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"]
            parts += [o.data["text/plain"] for o in cell.outputs if o.output_type == "execute_result"]
            texts[cell.metadata.tags[0]] = "".join(parts)
    return texts


def test_stages_one_at_a_time_on_a_firehose_event(outputs):
    assert outputs["event"].startswith("11 records from arn:aws:kinesis:eu-west-1:123456789012:stream/cities-changes")
    assert outputs["decode"].startswith('b\'{"awsRegion": "eu-west-1"')
    assert "('0090000', 'Ok', 'REMOVE')" in outputs["parse"]
    assert "'ProcessingFailed',\n  'parse: not valid JSON (" in outputs["parse"]
    assert outputs["keep"] == "Counter({'Ok': 8, 'Dropped': 2, 'ProcessingFailed': 1})"
    assert "'name': {'S': 'Zürich'}" in outputs["project"]
    assert outputs["csv"].splitlines() == [
        "INSERT,1,Zürich,421878,2026-01-01T00:00:00.000Z",
        "INSERT,2,São Paulo,11451245,2026-01-01T00:01:00.000Z",
        "INSERT,3,Kraków,779115,2026-01-01T00:02:00.000Z",
        "INSERT,4,Reykjavík,139875,2026-01-01T00:03:00.000Z",
        "INSERT,5,東京,13960000,2026-01-01T00:04:00.000Z",
        'INSERT,6,"Washington, D.C.",689545,2026-01-01T00:05:00.000Z',
        'INSERT,7,"Truth or Consequences ""T or C""",6052,2026-01-01T00:06:00.000Z',
        "MODIFY,1,Zürich,423193,2026-01-01T00:07:00.000Z",
    ]
    assert outputs["respond"] == outputs["keep"]


def test_another_selection_on_a_dynamodb_export(outputs):
    assert outputs["export"] == "5 items\n{'N': '12345678901234567890123456789012345678'}"
    assert outputs["export-csv"].splitlines() == [
        '1,Zürich,CH,47.3769,Zurich,"[""finance"",""lake""]",,ZRH,cities',
        '2,São Paulo,BR,-23.5505,Sampa,"[""megacity""]",,GRU,cities',
        '3,Kraków,PL,50.0647,Cracow,"[""old town"",""unesco""]",,,cities',
        '5,東京,JP,35.6762,Tokyo,"[""megacity""]",12345678901234567890123456789012345678,HND,cities',
        '6,"Washington, D.C.",US,38.9072,D.C.,"[""capital""]",,,cities',
    ]
    assert outputs["export-jsonl"].splitlines() == [  # every digit kept, NULL and missing both null
        '{"key":5,"location":{"lat":35.6762,"lon":139.6503},"tags":["megacity"],'
        '"visitors_total":12345678901234567890123456789012345678,"airport":"HND"}',
        '{"key":6,"location":{"lat":38.9072,"lon":-77.0369},"tags":["capital"],"visitors_total":null,"airport":null}',
    ]
    assert outputs["athena"].startswith("CREATE EXTERNAL TABLE `cities` (\n  `key` string,\n  `name` string,")
    assert "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'" in outputs["athena"]


def test_current_state_with_duckdb_over_a_local_output_folder(outputs):
    assert outputs["lake"] == "1 object(s): 10 changes\n"
    assert outputs["current"].splitlines() == [
        "('1', 'Zürich', '423193', '00001767226020000000')",  # the MODIFY, not the INSERT
        "('2', 'São Paulo', '11451245', '00001767225660000000')",
        "('3', 'Kraków', '779115', '00001767225720000000')",
        "('5', '東京', '13960000', '00001767225840000000')",
        "('6', 'Washington, D.C.', '689545', '00001767225900000000')",
    ]  # 4 and 7 were removed
