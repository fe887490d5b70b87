"""Hugging Face export: read back with `datasets` the way its users read it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# `datasets` reads these when it is imported: no network, ever.
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import datasets  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from collection.models import Execution, Task, TaskStatus, TrainingExample  # noqa: E402
from collection.sessions.trajectory import TrajectoryRecorder  # noqa: E402
from exports.huggingface import SCHEMA, export_dataset, size_category  # noqa: E402
from exports.options import ExportOptions  # noqa: E402
from exports.splits import SPLITS, assign  # noqa: E402
from tests.factories import (  # noqa: E402
    assistant_payload,
    make_example,
    make_execution,
    make_task,
    result_payload,
    tool_use,
)

pytestmark = pytest.mark.django_db


def _session(task: Task, n: int, *, output: str = "1 passed", success: bool = True) -> Execution:
    """A stored session whose prompt names its task and attempt (to find rows again)."""
    execution = make_execution(task=task, status=TaskStatus.IN_PROGRESS, model="claude-sonnet-4-5")
    recorder = TrajectoryRecorder(execution)
    recorder.record({"type": "system", "subtype": "init", "uuid": "init", "tools": ["Bash"]})
    prompt = {"content": f"task {task.pk} attempt {n}: make the tests pass"}
    recorder.record({"type": "user", "uuid": "prompt", "message": prompt})
    call = tool_use("toolu_1", "Bash", command="pytest -q", timeout=60)
    recorder.record(assistant_payload([call], response="msg_1"))
    recorder.record(result_payload("toolu_1", output))
    done = {"type": "text", "text": f"Done with task {task.pk}."}
    recorder.record(assistant_payload([done], response="msg_2"))
    subtype = "success" if success else "error_during_execution"
    recorder.record(
        {"type": "result", "subtype": subtype, "uuid": "result", "num_turns": 2}
        | {"total_cost_usd": 0.25, "duration_ms": 1000, "is_error": not success}
    )
    Execution.objects.filter(pk=execution.pk).update(success=success, cost_usd=0.25)
    return execution


def _world(tasks: int = 12, per_task: int = 2) -> list[TrainingExample]:
    examples = []
    for t in range(tasks):
        task = make_task(name=f"Task {t}")
        for n in range(per_task + t % 2):  # some tasks weigh more than others
            examples.append(make_example(_session(task, n, success=n % 2 == 0)))
    return examples


def _task_of(row: dict[str, Any]) -> int:
    return int(row["messages"][0]["content"].split()[1])


def _card(path: Path) -> tuple[dict[str, Any], str]:
    _, header, body = path.read_text("utf-8").split("---\n", 2)
    return yaml.safe_load(header), body


def test_load_from_disk_opens_a_dataset_dict_with_the_three_splits(tmp_path: Path) -> None:
    examples = _world()
    written = export_dataset(TrainingExample.objects.all(), ExportOptions(), tmp_path)

    loaded = datasets.load_from_disk(str(written["dataset"]))

    assert isinstance(loaded, datasets.DatasetDict)
    assert list(loaded) == list(SPLITS)
    assert sum(loaded[split].num_rows for split in SPLITS) == len(examples)
    row = loaded["train"][0]
    roles = [message["role"] for message in row["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    call = row["messages"][1]["tool_calls"][0]
    # arrow.json comes back as an object, as TRL's conversational-with-tools type wants it
    assert call["function"] == {
        "name": "Bash",
        "arguments": {"command": "pytest -q", "timeout": 60},
    }
    assert row["messages"][2]["content"] == "1 passed"
    assert row["tools"][0]["function"]["name"] == "Bash"
    assert row["tools"][0]["function"]["parameters"]["type"] == "object"


def test_parquet_files_open_with_load_dataset_and_hold_the_same_rows(tmp_path: Path) -> None:
    _world()
    written = export_dataset(TrainingExample.objects.all(), ExportOptions(), tmp_path / "out")
    files = {split: str(written[split]) for split in SPLITS}

    parquet = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "c"))
    on_disk = datasets.load_from_disk(str(written["dataset"]))

    for split in SPLITS:
        assert written[split].name == f"{split}-00000-of-00001.parquet"
        assert parquet[split].num_rows == written.split_rows[split]
        assert parquet[split].to_list() == on_disk[split].to_list()
    assert pq.read_schema(written["train"]).equals(SCHEMA)


def test_the_folder_loads_by_its_card_with_the_sizes_the_card_states(tmp_path: Path) -> None:
    _world()
    written = export_dataset(TrainingExample.objects.all(), ExportOptions(), tmp_path / "out")

    # load_dataset(<folder>) follows the card's `configs` and checks `dataset_info` split sizes.
    loaded = datasets.load_dataset(str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"))

    assert {split: loaded[split].num_rows for split in SPLITS} == written.split_rows


def test_no_task_is_in_two_splits_and_the_ratio_is_kept(tmp_path: Path) -> None:
    examples = _world(tasks=20)
    written = export_dataset(TrainingExample.objects.all(), ExportOptions(seed=7), tmp_path)
    loaded = datasets.load_from_disk(str(written["dataset"]))

    tasks = {split: {_task_of(row) for row in loaded[split]} for split in SPLITS}

    assert not tasks["train"] & tasks["validation"]
    assert not tasks["train"] & tasks["test"]
    assert not tasks["validation"] & tasks["test"]
    assert set().union(*tasks.values()) == {e.execution.task_id for e in examples}
    # 50 examples at 0.8 / 0.1 / 0.1 -> 40 / 5 / 5, tasks weighing 2 or 3
    assert abs(loaded["train"].num_rows - 40) <= 2
    assert abs(loaded["validation"].num_rows - 5) <= 2
    assert abs(loaded["test"].num_rows - 5) <= 2


def test_same_data_and_seed_give_byte_identical_files(tmp_path: Path) -> None:
    _world()
    options = ExportOptions(seed=3)
    export_dataset(TrainingExample.objects.all(), options, tmp_path / "a")
    export_dataset(TrainingExample.objects.all(), options, tmp_path / "b")

    a = {
        p.relative_to(tmp_path / "a"): p.read_bytes()
        for p in (tmp_path / "a").rglob("*")
        if p.is_file()
    }
    b = {
        p.relative_to(tmp_path / "b"): p.read_bytes()
        for p in (tmp_path / "b").rglob("*")
        if p.is_file()
    }

    assert sorted(str(p) for p in a) == [
        "README.md",
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
        "data/validation-00000-of-00001.parquet",
        "dataset/dataset_dict.json",
        *[
            f"dataset/{s}/{f}"
            for s in ("test", "train", "validation")
            for f in ("data-00000-of-00001.arrow", "dataset_info.json", "state.json")
        ],
    ]
    assert a == b


def test_another_seed_puts_tasks_in_other_splits(tmp_path: Path) -> None:
    _world(tasks=20)
    one = export_dataset(TrainingExample.objects.all(), ExportOptions(seed=1), tmp_path / "1")
    two = export_dataset(TrainingExample.objects.all(), ExportOptions(seed=2), tmp_path / "2")

    assert one["test"].read_bytes() != two["test"].read_bytes()


def test_the_card_header_parses_with_the_hubs_keys_and_the_right_counts(tmp_path: Path) -> None:
    _world(tasks=4, per_task=2)  # 4 tasks, 2 or 3 attempts: 10 examples, 6 of them passing
    written = export_dataset(
        TrainingExample.objects.all(),
        ExportOptions(split_ratio=(0.5, 0.25, 0.25)),
        tmp_path,
        filters={"category": "debugging"},
        license_id="mit",
    )

    header, body = _card(written["card"])

    assert header["license"] == "mit"
    assert header["task_categories"] == ["text-generation"]
    assert header["size_categories"] == ["n<1K"]
    assert {"agent", "tool-use", "synthetic"} <= set(header["tags"])
    assert header["configs"] == [
        {
            "config_name": "default",
            "data_files": [{"split": s, "path": f"data/{s}-*"} for s in SPLITS],
        }
    ]
    splits = {s["name"]: s["num_examples"] for s in header["dataset_info"]["splits"]}
    assert splits == written.split_rows
    assert sum(splits.values()) == 10
    assert "Pass rate (the task's verifier or the session's result): 60.0% of 10" in body
    assert "Cost of the sessions: $2.50" in body
    assert "Models: claude-sonnet-4-5 (10)" in body
    assert "Sources: scripted (10)" in body
    assert "Tools called: Bash (10)" in body
    assert '"category": "debugging"' in body


def test_secrets_in_tool_output_are_redacted_and_counted(tmp_path: Path) -> None:
    task = make_task()
    make_example(_session(task, 0, output="AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nok"))

    written = export_dataset(TrainingExample.objects.all(), ExportOptions(), tmp_path)

    data = b"".join(written[split].read_bytes() for split in SPLITS)
    assert b"AKIAIOSFODNN7EXAMPLE" not in data
    assert written.redactions == {"aws_key": 1}
    loaded = datasets.load_from_disk(str(written["dataset"]))
    assert (
        loaded["train"][0]["messages"][2]["content"] == "AWS_ACCESS_KEY_ID=[REDACTED:aws_key]\nok"
    )
    assert "aws_key (1)" in _card(written["card"])[1]


def test_rows_over_the_token_limit_are_left_out_and_the_empty_splits_still_load(
    tmp_path: Path,
) -> None:
    _world(tasks=3, per_task=1)

    written = export_dataset(TrainingExample.objects.all(), ExportOptions(max_tokens=5), tmp_path)

    assert written.written == 0
    assert written.left_out == {"invalid": 4}
    assert any("over the limit of 5" in finding for finding in written.findings)
    loaded = datasets.load_from_disk(str(written["dataset"]))
    assert [loaded[split].num_rows for split in SPLITS] == [0, 0, 0]
    assert pq.read_metadata(written["train"]).num_rows == 0


def test_duplicates_are_left_out_and_counted(tmp_path: Path) -> None:
    original, copy = _world(tasks=1, per_task=2)
    TrainingExample.objects.filter(pk=copy.pk).update(duplicate_of=original)

    written = export_dataset(TrainingExample.objects.all(), ExportOptions(), tmp_path)

    assert written.written == 1
    assert written.left_out == {"duplicate": 1}


def test_progress_counts_every_example_across_splits(tmp_path: Path) -> None:
    _world(tasks=6, per_task=1)  # 9 examples
    seen: list[tuple[int, int]] = []

    export_dataset(
        TrainingExample.objects.all(),
        ExportOptions(),
        tmp_path,
        progress=lambda d, t: seen.append((d, t)),
    )

    assert seen[-1] == (9, 9)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


# --- the split rule, without a database ---------------------------------------------------------


def test_assign_keeps_each_task_whole_and_is_seeded() -> None:
    weights = {task: 1 + task % 4 for task in range(1, 101)}

    plan = assign(weights, (0.8, 0.1, 0.1), seed=5)

    assert sorted(plan["train"] + plan["validation"] + plan["test"]) == list(range(1, 101))
    counts = {split: sum(weights[t] for t in plan[split]) for split in SPLITS}
    assert counts == {"train": 200, "validation": 25, "test": 25}
    assert assign(weights, (0.8, 0.1, 0.1), seed=5) == plan
    assert assign(weights, (0.8, 0.1, 0.1), seed=6) != plan


def test_a_split_with_no_share_gets_no_task() -> None:
    plan = assign({1: 3, 2: 1, 3: 2}, (0.5, 0.5, 0.0), seed=0)

    assert plan["test"] == []
    assert sorted(plan["train"] + plan["validation"]) == [1, 2, 3]


def test_one_heavy_task_goes_whole_to_train() -> None:
    plan = assign({1: 10, 2: 1, 3: 1}, (0.8, 0.1, 0.1), seed=0)

    assert plan["train"] == [1]
    assert len(plan["validation"]) == len(plan["test"]) == 1  # 2 and 3, in the seed's order
    assert sorted(plan["validation"] + plan["test"]) == [2, 3]


@pytest.mark.parametrize(
    ("rows", "bucket"),
    [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (99_999, "10K<n<100K"), (10**6, "1M<n<10M")],
)
def test_size_category_buckets(rows: int, bucket: str) -> None:
    assert size_category(rows) == bucket
