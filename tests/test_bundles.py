"""Bundles: a zip of the data files, manifest.json and a dataset card, deterministic, written
under a temporary name and renamed when complete."""

from __future__ import annotations

import hashlib
import os
import time
import zipfile
from pathlib import Path

import orjson
import pytest
import time_machine

from collection.models import Execution, TaskStatus, TrainingExample
from exports.bundles import (
    build_bundle,
    bundle_path,
    exports_dir,
    remove_stale_temporaries,
)
from exports.options import ExportOptions
from tests.factories import (
    assistant_payload,
    make_example,
    make_execution,
    make_trajectory,
    result_payload,
    tool_use,
)

pytestmark = pytest.mark.django_db

AWS_KEY = "AKIAQWERTYUIOPASDFGH"  # the shape of an AWS access key id; not a real one


def examples_with_trajectories(n: int) -> list[TrainingExample]:
    return [
        make_example(make_trajectory(make_execution(status=TaskStatus.IN_PROGRESS)))
        for _ in range(n)
    ]


def record(execution: Execution, payloads: list[dict]) -> Execution:
    """Store payloads as the live collector does (messages and paired tool calls)."""
    from collection.sessions.trajectory import TrajectoryRecorder

    recorder = TrajectoryRecorder(execution)
    for payload in payloads:
        recorder.record(payload)
    return execution


def prompt(text: str) -> dict:
    return {"type": "user", "uuid": f"prompt-{text}", "message": {"content": text}}


def leaking_example() -> TrainingExample:
    """A session whose tool printed an AWS key."""
    call = tool_use("toolu_env", "Bash", command="env")
    done = {"type": "text", "text": "Those are the variables."}
    execution = record(
        make_execution(status=TaskStatus.IN_PROGRESS),
        [
            prompt("Show env"),
            assistant_payload([call], response="msg_env"),
            result_payload("toolu_env", f"AWS_ACCESS_KEY_ID={AWS_KEY}\nHOME=/"),
            assistant_payload([done], response="msg_done"),
        ],
    )
    return make_example(execution)


def unanswered_example() -> TrainingExample:
    """A session whose tool call never got its result, though the agent went on talking (a
    call at the very end is trimmed instead: exports.records)."""
    call = tool_use("toolu_lost", "Bash", command="make")
    went_on = assistant_payload([{"type": "text", "text": "Done, I think."}], response="msg_on")
    execution = record(
        make_execution(status=TaskStatus.FAILED, is_partial=True),
        [prompt("Run it"), assistant_payload([call], response="msg_lost"), went_on],
    )
    return make_example(execution)


def entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_bundle_holds_the_data_a_manifest_with_checksums_and_a_dataset_card(tmp_path):
    examples_with_trajectories(3)
    bundle = build_bundle(
        TrainingExample.objects.all(),
        "jsonl",
        ExportOptions(seed=7),
        tmp_path / "b.zip",
        filters={"category": "debugging"},
    )

    files = entries(bundle.path)
    assert sorted(files) == ["README.md", "data.jsonl", "manifest.json"]
    assert bundle.size == bundle.path.stat().st_size
    manifest = orjson.loads(files["manifest.json"])
    assert manifest == bundle.manifest
    assert manifest["format"] == "jsonl" and manifest["seed"] == 7
    assert manifest["schema_version"] == 1 and manifest["software"]["version"]
    assert manifest["filters"] == {"category": "debugging"}
    assert manifest["options"]["include_thinking"] is False and manifest["options"]["redact"]
    assert manifest["counts"] == {"records": 3, "written": 3, "left_out": {}}
    for name in ("data.jsonl", "README.md"):
        digest = manifest["files"][name]
        assert digest == {
            "sha256": hashlib.sha256(files[name]).hexdigest(),
            "bytes": len(files[name]),
        }
    assert len(files["data.jsonl"].splitlines()) == 3
    card = files["README.md"].decode()
    assert card.startswith("# trainingdash export: jsonl")
    assert "- category = debugging" in card and "3 rows from 3 records" in card


def test_the_same_data_filters_and_seed_give_byte_identical_files(tmp_path):
    examples_with_trajectories(2)
    leaking_example()
    build = [
        build_bundle(TrainingExample.objects.all(), "jsonl", ExportOptions(seed=3), tmp_path / n)
        for n in ("one.zip", "two.zip")
    ]
    first, second = (entries(b.path) for b in build)
    assert first["data.jsonl"] == second["data.jsonl"]
    assert first["README.md"] == second["README.md"]
    with zipfile.ZipFile(build[0].path) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert archive.namelist() == sorted(archive.namelist())


def test_with_the_same_clock_the_whole_zip_is_byte_identical(tmp_path):
    examples_with_trajectories(2)
    paths = []
    for name in ("one.zip", "two.zip"):
        with time_machine.travel("2026-11-30 12:00:00+00:00", tick=False):
            paths.append(
                build_bundle(
                    TrainingExample.objects.all(), "jsonl", ExportOptions(), tmp_path / name
                ).path
            )
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_the_manifest_counts_redactions_by_kind_and_what_was_left_out_and_why(tmp_path):
    examples_with_trajectories(1)
    leaking_example()
    unanswered_example()
    bundle = build_bundle(
        TrainingExample.objects.all(), "jsonl", ExportOptions(), tmp_path / "b.zip"
    )

    manifest = bundle.manifest
    assert manifest["redactions"] == {"aws_key": 1}
    assert manifest["counts"]["records"] == 3
    assert manifest["counts"]["written"] == 2
    assert manifest["counts"]["left_out"] == {"invalid": 1}
    assert manifest["findings"]
    assert all(
        "toolu_lost was never answered" in f or "toolu_lost is not answered" in f
        for f in manifest["findings"]
    )
    data = entries(bundle.path)["data.jsonl"].decode()
    assert AWS_KEY not in data and "[REDACTED:aws_key]" in data
    assert "toolu_lost" not in data  # never written broken


def test_duplicates_are_left_out_and_counted_by_default(tmp_path):
    original, copy = examples_with_trajectories(2)
    TrainingExample.objects.filter(pk=copy.pk).update(duplicate_of=original)
    bundle = build_bundle(
        TrainingExample.objects.all(), "jsonl", ExportOptions(), tmp_path / "b.zip"
    )
    assert bundle.counts["left_out"] == {"duplicate": 1}
    assert bundle.counts["written"] == 1


class Interrupted(BaseException):
    """Stands in for a worker stopped midway (not an Exception: nothing may swallow it)."""


def test_an_export_stopped_midway_leaves_no_bundle_and_no_temporary_files(tmp_path):
    examples_with_trajectories(3)
    destination = tmp_path / "b.zip"

    def stop_at_the_second(done: int, total: int) -> None:
        if done == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        build_bundle(
            TrainingExample.objects.all(),
            "jsonl",
            ExportOptions(),
            destination,
            progress=stop_at_the_second,
        )
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rebuild_keeps_the_previous_complete_bundle(tmp_path):
    examples_with_trajectories(2)
    destination = tmp_path / "b.zip"
    first = build_bundle(TrainingExample.objects.all(), "jsonl", ExportOptions(), destination)
    before = destination.read_bytes()

    def stop(done: int, total: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        build_bundle(
            TrainingExample.objects.all(), "jsonl", ExportOptions(), destination, progress=stop
        )
    assert destination.read_bytes() == before and first.size == len(before)
    assert [p.name for p in tmp_path.iterdir()] == ["b.zip"]


def test_leftovers_of_a_killed_build_are_cleared_by_the_next_build(tmp_path):
    examples_with_trajectories(1)
    destination = tmp_path / "export-9-jsonl.zip"
    # What a SIGKILL mid-zip leaves: the temporary folder and a half-written zip.
    (tmp_path / ".tmp-export-9-jsonl-abc123").mkdir()
    (tmp_path / ".tmp-export-9-jsonl-abc123" / "data.jsonl").write_text("{")
    (tmp_path / ".export-9-jsonl.zip.part").write_bytes(b"PK\x03\x04half")

    build_bundle(TrainingExample.objects.all(), "jsonl", ExportOptions(), destination)
    assert [p.name for p in tmp_path.iterdir()] == ["export-9-jsonl.zip"]
    assert zipfile.ZipFile(destination).testzip() is None


def test_stale_temporary_files_are_removed_and_fresh_ones_kept(tmp_path):
    stale = tmp_path / ".tmp-export-1-jsonl-x"
    stale.mkdir()
    part = tmp_path / ".export-1-jsonl.zip.part"
    part.write_bytes(b"half")
    fresh = tmp_path / ".export-2-jsonl.zip.part"
    fresh.write_bytes(b"in progress")
    two_days_ago = time.time() - 2 * 86400
    for path in (stale, part):
        os.utime(path, (two_days_ago, two_days_ago))

    assert remove_stale_temporaries(tmp_path) == 2
    assert [p.name for p in tmp_path.iterdir()] == [fresh.name]


@pytest.mark.parametrize(
    "name",
    ["../secret.zip", "/etc/passwd", "a/b.zip", ".export-1-jsonl.zip.part", "x.txt", "", ".."],
)
def test_a_name_that_is_not_one_of_our_bundles_has_no_path(settings, tmp_path, name):
    settings.DATA_DIR = tmp_path
    assert bundle_path(name) is None


def test_a_bundle_name_resolves_inside_the_exports_folder(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    assert (
        bundle_path("export-3-jsonl.zip") == (tmp_path / "exports" / "export-3-jsonl.zip").resolve()
    )
    assert exports_dir() == tmp_path / "exports"


def test_a_selection_is_named_in_the_manifest_and_the_card(tmp_path):
    a, b = examples_with_trajectories(2)
    bundle = build_bundle(
        TrainingExample.objects.filter(pk=a.pk),
        "jsonl",
        ExportOptions(),
        tmp_path / "b.zip",
        selected=1,
    )
    assert bundle.manifest["selected_examples"] == 1 and bundle.manifest["filters"] == {}
    assert "- a selection of 1 examples" in entries(bundle.path)["README.md"].decode()
    assert bundle.counts["records"] == 1 and Execution.objects.count() == 2


def test_a_hugging_face_bundle_carries_its_own_card_and_opens_with_datasets(tmp_path):
    import datasets

    from tests.factories import make_task

    for n in range(6):
        task = make_task(name=f"Task {n}")
        make_example(make_trajectory(make_execution(task, status=TaskStatus.IN_PROGRESS)))
    bundle = build_bundle(
        TrainingExample.objects.all(),
        "huggingface",
        ExportOptions(seed=1),
        tmp_path / "hf.zip",
        filters={"category": "debugging"},
    )

    files = entries(bundle.path)
    assert files["README.md"].startswith(b"---\n")  # the Hub's YAML header, not our short card
    assert "data/train-00000-of-00001.parquet" in files
    assert set(bundle.manifest["files"]) == set(files) - {"manifest.json"}
    for name, digest in bundle.manifest["files"].items():
        assert digest["sha256"] == hashlib.sha256(files[name]).hexdigest()
    with zipfile.ZipFile(bundle.path) as archive:
        archive.extractall(tmp_path / "unpacked")
    loaded = datasets.load_from_disk(str(tmp_path / "unpacked" / "dataset"))
    assert sum(split.num_rows for split in loaded.values()) == bundle.counts["written"] == 6
