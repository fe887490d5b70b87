"""`manage.py export`: the list's filters, a format and options in; a bundle out, with a progress
bar; `--prune` deletes expired bundles."""

from __future__ import annotations

import zipfile
from datetime import timedelta
from io import StringIO

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from collection.models import JobStatus, TaskStatus
from exports.bundles import exports_dir
from exports.models import ExportJob
from tests.factories import make_example, make_execution, make_task, make_trajectory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"


def trajectories(n: int, category: str, quality: float) -> None:
    task = make_task(category=category)
    for _ in range(n):
        execution = make_trajectory(make_execution(task, status=TaskStatus.IN_PROGRESS))
        make_example(execution, quality_score=quality)


def export(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("export", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_export_writes_a_bundle_of_what_the_filters_match_with_a_progress_bar(tmp_path):
    trajectories(2, "debugging", 0.9)
    trajectories(1, "debugging", 0.3)
    trajectories(2, "testing", 0.9)
    output = tmp_path / "debugging.zip"

    out, err = export(
        "--format",
        "messages",
        "--filter",
        "category=debugging",
        "--filter",
        "min_quality=0.8",
        "--include-thinking",
        "--seed",
        "5",
        "--output",
        str(output),
    )
    assert f"wrote 2 rows from 2 records to {output}" in out and "left out: none" in out
    assert "2/2" in err  # tqdm's bar
    with zipfile.ZipFile(output) as archive:
        manifest = orjson.loads(archive.read("manifest.json"))
        rows = archive.read("data.jsonl").decode().splitlines()
    assert manifest["format"] == "messages" and manifest["seed"] == 5
    assert manifest["filters"] == {"category": "debugging", "min_quality": 0.8}
    assert manifest["options"]["include_thinking"] is True
    assert len(rows) == 2
    assert "Turn 1: run the next case." in rows[0]  # the thinking, as asked


def test_the_same_command_twice_gives_byte_identical_data(tmp_path):
    trajectories(3, "debugging", 0.9)
    for name in ("a.zip", "b.zip"):
        export("--format", "jsonl", "--seed", "1", "--output", str(tmp_path / name))
    data = [zipfile.ZipFile(tmp_path / n).read("data.jsonl") for n in ("a.zip", "b.zip")]
    assert data[0] == data[1] and data[0].count(b"\n") == 3


def test_ids_export_exactly_those_examples(tmp_path):
    trajectories(3, "debugging", 0.9)
    from collection.models import TrainingExample

    first = TrainingExample.objects.order_by("pk").first()
    assert first is not None
    out, _err = export(
        "--format", "jsonl", "--ids", str(first.pk), "--output", str(tmp_path / "x.zip")
    )
    assert "wrote 1 rows from 1 records" in out


def test_dry_run_only_counts(tmp_path):
    trajectories(2, "debugging", 0.9)
    out, _err = export("--format", "jsonl", "--filter", "category=debugging", "--dry-run")
    assert out.strip() == "would export 2 examples"
    assert list(tmp_path.glob("*.zip")) == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--format", "jsonl", "--filter", "category", "--dry-run"], "NAME=VALUE"),
        (["--format", "jsonl", "--filter", "min_quality=3", "--dry-run"], "min_quality"),
        (["--format", "jsonl", "--filter", "colour=red", "--dry-run"], "colour"),
        (["--format", "jsonl"], "give --format and --output"),
        (["--format", "jsonl", "--split-ratio", "0.5,0.5,0.5", "--dry-run"], "split_ratio"),
    ],
)
def test_bad_arguments_say_what_is_wrong(args, said):
    with pytest.raises(CommandError, match=said):
        export(*args)


def test_prune_deletes_expired_bundles_and_keeps_the_rest():
    old = ExportJob.objects.create(
        format="jsonl",
        status=JobStatus.SUCCEEDED,
        bundle_name="export-1-jsonl.zip",
        expires_at=timezone.now() - timedelta(hours=1),
    )
    kept = ExportJob.objects.create(
        format="jsonl",
        status=JobStatus.SUCCEEDED,
        bundle_name="export-2-jsonl.zip",
        expires_at=timezone.now() + timedelta(days=6),
    )
    for job in (old, kept):
        (exports_dir() / job.bundle_name).write_bytes(b"PK")

    out, _err = export("--prune")
    assert out.strip() == "deleted 1 expired bundles"
    assert sorted(p.name for p in exports_dir().iterdir()) == [kept.bundle_name]
