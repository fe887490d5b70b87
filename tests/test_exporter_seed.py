"""The seed's TrainingDataExporter, called as the seed document shows."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import orjson
import pytest

from collection.storage import TrainingStorage
from exports.exporter import TrainingDataExporter
from exports.formats import ExportError
from exports.formats.openai_chat import validate_openai_row
from tests.factories import make_example, make_execution, make_task, make_trajectory

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def exporter(db) -> TrainingDataExporter:
    debugging = make_task(category="debugging", metadata={"verifier": "pytest -q"})
    make_example(make_trajectory(make_execution(debugging)), quality_score=0.9, is_golden=True)
    testing = make_task(category="testing")
    make_example(make_trajectory(make_execution(testing, session_id="s2")), quality_score=0.4)
    return TrainingDataExporter(TrainingStorage())


def test_fine_tuning_writes_the_one_file_the_seed_names(
    exporter: TrainingDataExporter, tmp_path: Path
) -> None:
    result = exporter.export_for_fine_tuning(
        output_path=tmp_path / "fine_tuning.jsonl", format="jsonl"
    )
    rows = [
        orjson.loads(line) for line in (tmp_path / "fine_tuning.jsonl").read_bytes().splitlines()
    ]
    assert result.files == [tmp_path / "fine_tuning.jsonl"] and result.written == 2
    assert all(validate_openai_row(row) == [] for row in rows)
    exporter.export_for_fine_tuning(
        output_path=tmp_path / "conversations.json", format="conversations"
    )
    exporter.export_for_fine_tuning(output_path=tmp_path / "instructions.jsonl", format="instruct")
    assert len(json.loads((tmp_path / "conversations.json").read_text())) == 2
    assert len((tmp_path / "instructions.jsonl").read_text().splitlines()) == 2
    # nothing else is left beside them: no scratch folder, no dataset_info.json
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "conversations.json",
        "fine_tuning.jsonl",
        "instructions.jsonl",
    ]


def test_fine_tuning_takes_the_seeds_filters_and_export_options(
    exporter: TrainingDataExporter, tmp_path: Path
) -> None:
    path = tmp_path / "golden.jsonl"
    result = exporter.export_for_fine_tuning(
        path,
        format="jsonl",
        filters={"min_quality": 0.8, "category": "debugging"},
        include_thinking=True,
    )
    (row,) = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert result.written == 1
    assert row["messages"][1]["reasoning_content"].startswith("Turn 1")
    with pytest.raises(ValueError, match="colour"):
        exporter.export_for_fine_tuning(path, filters={"colour": "red"})


def test_evaluation_exports_golden_examples_by_default(
    exporter: TrainingDataExporter, tmp_path: Path
) -> None:
    path = tmp_path / "eval_dataset.json"
    result = exporter.export_for_evaluation(
        output_path=path, format="json", include_golden_only=True
    )
    (item,) = json.loads(path.read_text())
    assert (item["golden"], item["verifier"], item["prompt"]) == (
        True,
        "pytest -q",
        "Fix the tests",
    )
    assert result.left_out == {"not golden": 1}
    everything = exporter.export_for_evaluation(path, include_golden_only=False)
    assert everything.written == 2
    with pytest.raises(ExportError, match="json"):
        exporter.export_for_evaluation(path, format="yaml")


def test_ml_frameworks_writes_a_dataset_that_datasets_loads(
    exporter: TrainingDataExporter, tmp_path: Path
) -> None:
    paths = exporter.export_for_ml_frameworks(
        output_dir=tmp_path / "hf_dataset", framework="huggingface", split_ratio=(0.8, 0.1, 0.1)
    )
    loaded = datasets.load_from_disk(str(paths["dataset"]))
    assert sum(split.num_rows for split in loaded.values()) == 2
    parquet = datasets.load_dataset("parquet", data_files=str(paths["train"]), split="train")
    assert "messages" in parquet.column_names
    assert (tmp_path / "hf_dataset" / "README.md").read_text().startswith("---")


def test_an_unknown_framework_is_refused(exporter: TrainingDataExporter, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="tensorflow"):
        exporter.export_for_ml_frameworks(tmp_path / "out", framework="tensorflow")


def test_a_plain_script_exports_as_the_seed_shows(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        from collection.storage import SQLiteTrainingStorage
        storage = SQLiteTrainingStorage("training_data.db")
        from exports.exporter import TrainingDataExporter
        from tests.factories import make_example, make_trajectory
        make_example(make_trajectory(), is_golden=True)
        exporter = TrainingDataExporter(storage)
        exporter.export_for_fine_tuning(output_path="fine_tuning.jsonl", format="jsonl")
        exporter.export_for_evaluation(
            output_path="eval_dataset.json", format="json", include_golden_only=True
        )
        print("ok")
        """
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    (row,) = [
        json.loads(line) for line in (tmp_path / "fine_tuning.jsonl").read_text().splitlines()
    ]
    assert row["messages"][0] == {"role": "user", "content": "Fix the tests"}
    assert len(json.loads((tmp_path / "eval_dataset.json").read_text())) == 1
