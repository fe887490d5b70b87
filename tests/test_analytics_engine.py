"""The analytics engine: every figure against counts computed with the ORM on the same data,
freshness after a change, filters, and incremental refreshes that write only the delta."""

from __future__ import annotations

import datetime as dt
import fcntl
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import User
from django.db.models import Avg, Count, Q, Sum
from django.utils import timezone

from collection.calibration import DEFAULT_PASS_RATE
from collection.models import (
    Execution,
    Message,
    StepMark,
    TaskStatus,
    ToolCall,
    TrainingExample,
)
from collection.queries import ExampleFilters, filter_examples
from collection.review import mark_step, set_golden, set_validated
from exports.analytics import snapshot
from exports.analytics.engine import Analytics, get_analytics
from exports.analytics.snapshot import current_files, refresh_snapshot
from tests.factories import (
    assistant_payload,
    make_example,
    make_execution,
    make_message,
    make_task,
    make_tool_call,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def snap(tmp_path: Path) -> Path:
    """A private snapshot directory: tests never read each other's snapshots."""
    return tmp_path / "analytics"


def _session(task_kw: dict[str, Any], **kw: Any) -> TrainingExample:
    """An example of a task with `task_kw`; execution fields and example fields from `kw`."""
    example_fields = {
        k: kw.pop(k) for k in ("quality_score", "is_golden", "validated", "tags") if k in kw
    }
    tools = kw.pop("tools", [])
    execution = make_execution(make_task(**task_kw), **kw)
    for n, (name, failed) in enumerate(tools):
        make_tool_call(execution, n, name=name, is_error=failed)
    return make_example(execution, **example_fields)


@pytest.fixture
def world(reviewer: User) -> list[TrainingExample]:
    """A small, varied dataset."""
    debug_easy = {"category": "debugging", "difficulty": "easy"}
    debug_hard = {"category": "debugging", "difficulty": "hard"}
    testing = {"category": "testing", "difficulty": "medium"}
    examples = [
        _session(
            debug_easy,
            quality_score=0.91,
            is_golden=True,
            model="claude-sonnet-4-5",
            cost_usd=0.02,
            input_tokens=100,
            output_tokens=50,
            cache_read_input_tokens=1000,
            cache_creation_input_tokens=10,
            tools=[("Read", False), ("Edit", False), ("Bash", True)],
            num_turns=3,
        ),
        _session(
            debug_easy,
            quality_score=0.62,
            model="claude-sonnet-4-5",
            cost_usd=0.03,
            input_tokens=200,
            output_tokens=80,
            tools=[("Read", False)],
            num_turns=5,
            duration_ms=45_000,
        ),
        _session(
            debug_hard,
            quality_score=0.23,
            success=False,
            model="claude-haiku-4-5",
            error="Timed out after 600s\nmore",
            status=TaskStatus.FAILED,
            cost_usd=0.5,
            tools=[("Bash", True), ("Bash", False)],
            num_turns=12,
            duration_ms=700_000,
        ),
        _session(
            testing,
            quality_score=0.41,
            success=False,
            source="claude",
            model="",
            performance_metrics={"verifier": {"output": "running\n2 failed, 1 passed\n"}},
            cost_usd=0.07,
            num_turns=3,
            duration_ms=None,
            tags=["flaky"],
        ),
        _session(
            testing,
            quality_score=0.83,
            is_golden=True,
            source="imported",
            model="claude-opus-4-1",
            cost_usd=1.25,
            output_tokens=999,
            num_turns=8,
            tags=["flaky", "long"],
        ),
    ]
    examples[4].duplicate_of = examples[3]
    examples[4].save()
    set_validated([e.pk for e in examples[:2]], reviewer, True)
    return examples


def _table(analytics: Analytics, name: str) -> list[dict[str, Any]]:
    return analytics.tables[name].as_dicts()


def test_summary_matches_the_orm(world: list[TrainingExample], snap: Path) -> None:
    summary = get_analytics(directory=snap).summary
    examples = TrainingExample.objects.all()
    totals = examples.aggregate(
        n=Count("id"),
        passed=Count("id", filter=Q(execution__success=True)),
        golden=Count("id", filter=Q(is_golden=True)),
        validated=Count("id", filter=Q(validated=True)),
        quality=Avg("quality_score"),
        cost=Sum("execution__cost_usd"),
        dups=Count("id", filter=Q(duplicate_of__isnull=False)),
    )
    tokens = sum(e.execution.total_tokens for e in examples.select_related("execution"))
    assert summary["total_examples"] == totals["n"] == 5
    assert summary["success_rate"] == pytest.approx(totals["passed"] / totals["n"])
    assert summary["golden_examples"] == totals["golden"]
    assert summary["validated_examples"] == totals["validated"]
    assert summary["avg_quality"] == pytest.approx(totals["quality"])
    assert summary["total_cost_usd"] == pytest.approx(totals["cost"])
    assert summary["total_tokens"] == tokens
    assert summary["duplicates"] == totals["dups"] == 1


def test_category_difficulty_matches_the_orm(world: list[TrainingExample], snap: Path) -> None:
    rows = _table(get_analytics(directory=snap), "by_category_difficulty")
    groups = (
        TrainingExample.objects.values("execution__task__category", "execution__task__difficulty")
        .annotate(
            n=Count("id"),
            passed=Count("id", filter=Q(execution__success=True)),
            quality=Avg("quality_score"),
        )
        .order_by()
    )
    expected = {
        (g["execution__task__category"], g["execution__task__difficulty"]): g for g in groups
    }
    assert {(r["category"], r["difficulty"]) for r in rows} == set(expected)
    for row in rows:
        group = expected[row["category"], row["difficulty"]]
        assert row["examples"] == group["n"]
        assert row["success_rate"] == pytest.approx(group["passed"] / group["n"])
        assert row["avg_quality"] == pytest.approx(group["quality"])
        assert row["target_pass_rate"] == DEFAULT_PASS_RATE[row["difficulty"]]
    # Easy before hard within a category.
    assert [r["difficulty"] for r in rows[:2]] == ["easy", "hard"]


def test_links_open_the_examples_list_on_each_row(world: list[TrainingExample], snap: Path) -> None:
    table = get_analytics(directory=snap).tables["by_category_difficulty"]
    assert table.links is not None
    for row, link in zip(table.as_dicts(), table.links, strict=True):
        shown = filter_examples(ExampleFilters.from_query(link)).count()
        assert shown == row["examples"]


def test_histogram_over_time_turns_and_duration_match_the_orm(
    world: list[TrainingExample], snap: Path
) -> None:
    analytics = get_analytics(directory=snap)
    histogram = _table(analytics, "quality_histogram")
    assert len(histogram) == 20
    for bucket in histogram:
        inside = TrainingExample.objects.filter(
            quality_score__gte=bucket["bucket_start"], quality_score__lt=bucket["bucket_end"]
        )
        assert bucket["examples"] == inside.count()
        assert bucket["golden_threshold"] == 0.8
    today = timezone.localdate()
    assert _table(analytics, "over_time") == [
        {"day": today, "examples": 5, "passed": 3, "golden": 2}
    ]
    turns = Counter(Execution.objects.values_list("num_turns", flat=True))
    assert {r["turns"]: r["examples"] for r in _table(analytics, "turns")} == turns
    durations = {r["bucket_seconds"]: r["examples"] for r in _table(analytics, "duration")}
    assert durations[10] == 4 - 1 - 1  # 12 s (the factory's default) twice
    assert durations[30] == 1 and durations[600] == 1  # 45 s, 700 s
    assert sum(durations.values()) == Execution.objects.filter(duration_ms__isnull=False).count()


def test_cost_by_model_and_source_match_the_orm(world: list[TrainingExample], snap: Path) -> None:
    analytics = get_analytics(directory=snap)
    for key in ("model", "source"):
        rows = {r[key]: r for r in _table(analytics, f"cost_by_{key}")}
        groups = Execution.objects.values(key).annotate(
            n=Count("id"),
            cost=Sum("cost_usd"),
            inp=Sum("input_tokens"),
            out=Sum("output_tokens"),
            read=Sum("cache_read_input_tokens"),
            made=Sum("cache_creation_input_tokens"),
        )
        assert set(rows) == {g[key] for g in groups}
        for g in groups:
            row = rows[g[key]]
            assert row["examples"] == g["n"]
            assert row["cost_usd"] == pytest.approx(g["cost"])
            assert row["avg_cost_usd"] == pytest.approx(g["cost"] / g["n"])
            assert (row["input_tokens"], row["output_tokens"]) == (g["inp"], g["out"])
            assert (row["cache_read_tokens"], row["cache_creation_tokens"]) == (
                g["read"],
                g["made"],
            )


def test_tool_usage_matches_the_orm(world: list[TrainingExample], snap: Path) -> None:
    table = get_analytics(directory=snap).tables["tool_usage"]
    groups = ToolCall.objects.values("name").annotate(
        calls=Count("id"), errors=Count("id", filter=Q(is_error=True))
    )
    expected = {g["name"]: (g["calls"], g["errors"]) for g in groups}
    assert {r["tool"]: (r["calls"], r["errors"]) for r in table.as_dicts()} == expected
    bash = next(r for r in table.as_dicts() if r["tool"] == "Bash")
    assert bash["error_rate"] == pytest.approx(2 / 3)
    assert table.links is not None
    for row, link in zip(table.as_dicts(), table.links, strict=True):
        sessions = Execution.objects.filter(tool_calls__name=row["tool"]).distinct().count()
        assert filter_examples(ExampleFilters.from_query(link)).count() == sessions


def test_review_failures_and_duplicates_match_the_orm(
    world: list[TrainingExample], reviewer: User, snap: Path
) -> None:
    analytics = get_analytics(directory=snap)
    reviewed = TrainingExample.objects.filter(reviewer=reviewer)
    assert _table(analytics, "review_by_reviewer") == [
        {
            "reviewer": "bob",
            "reviewed": reviewed.filter(reviewed_at__isnull=False).count(),
            "validated": reviewed.filter(validated=True).count(),
            "golden": reviewed.filter(is_golden=True).count(),
            "bad_steps": StepMark.objects.filter(example__reviewer=reviewer).count(),
        }
    ]
    failed = Execution.objects.exclude(success=True)
    assert {r["reason"]: r["examples"] for r in _table(analytics, "failure_reasons")} == dict(
        Counter(e.failure_line for e in failed)
    )
    assert {r["kind"]: r["examples"] for r in _table(analytics, "duplicates")} == {
        "unique": 3,
        "original": 1,
        "duplicate": 1,
    }


def test_token_lengths_count_every_example_by_its_exported_conversation(
    world: list[TrainingExample], snap: Path
) -> None:
    long_one = world[0].execution
    make_message(long_one, {"type": "user", "message": {"role": "user", "content": "x" * 40_000}})
    make_message(long_one, assistant_payload([{"type": "text", "text": "done"}], response="r1"))
    TrainingExample.objects.filter(pk=world[0].pk).update(updated_at=timezone.now())
    rows = _table(get_analytics(directory=snap), "token_lengths")
    assert sum(r["examples"] for r in rows) == 5
    # 40,000 characters is about 10,000 tokens: the 8K-16K bucket, which fits a 16K... 32K.
    ten_k = next(r for r in rows if r["bucket"] == "8K–16K")
    assert ten_k["examples"] == 1
    assert ten_k["context_limit_label"] == "fits 32K"


# --- filters ----------------------------------------------------------------------------------

FILTERS = [
    {"category": "debugging"},
    {"difficulty": "easy", "category": "debugging"},
    {"min_quality": "0.4", "max_quality": "0.85"},
    {"is_golden": "true"},
    {"validated": "false"},
    {"status": "failed"},
    {"source": "imported"},
    {"model": "claude-sonnet-4-5"},
    {"tag": "flaky"},
    {"duplicates": "exclude"},
    {"duplicates": "only"},
    {"tool": "Bash"},
    {"tool_error": "any"},
    {"tool_error": "Read"},
    {"min_cost": "0.05", "max_cost": "1"},
    {"min_turns": "4", "max_turns": "8"},
    {"reviewer": "bob"},
    {"bad_steps": "false"},
    {"created_from": "2000-01-01", "created_to": "2000-01-02"},
]


@pytest.mark.parametrize("params", FILTERS, ids=lambda p: ",".join(p))
def test_filters_select_what_the_examples_list_selects(
    world: list[TrainingExample], snap: Path, params: dict[str, str]
) -> None:
    filters = ExampleFilters.from_query(params)
    summary = get_analytics(filters, directory=snap).summary
    matches = filter_examples(filters)
    assert summary["total_examples"] == matches.count()
    assert summary["golden_examples"] == matches.filter(is_golden=True).count()


def test_created_dates_are_the_sites_days(world: list[TrainingExample], snap: Path) -> None:
    today = timezone.localdate()
    TrainingExample.objects.filter(pk=world[0].pk).update(
        created_at=timezone.now() - dt.timedelta(days=3), updated_at=timezone.now()
    )
    params = {"created_from": str(today), "created_to": str(today)}
    analytics = get_analytics(ExampleFilters.from_query(params), directory=snap)
    assert analytics.summary["total_examples"] == 4
    over_time = _table(get_analytics(directory=snap), "over_time")
    assert [r["examples"] for r in over_time] == [1, 4]


def test_a_search_uses_the_lists_full_text_search(world: list[TrainingExample], snap: Path) -> None:
    TrainingExample.objects.filter(pk=world[2].pk).update(
        search_text="segfault in the parser", updated_at=timezone.now()
    )
    filters = ExampleFilters(q="segfault")
    assert get_analytics(filters, directory=snap).summary["total_examples"] == (
        filter_examples(filters).count()
    )


def test_links_keep_the_current_filters(world: list[TrainingExample], snap: Path) -> None:
    analytics = get_analytics(ExampleFilters.from_query({"source": "scripted"}), directory=snap)
    links = analytics.tables["turns"].links
    assert links is not None
    assert links[0] == {"source": "scripted", "min_turns": "3", "max_turns": "3"}


# --- freshness and incremental refreshes -------------------------------------------------------


def test_a_new_example_shows_after_one_refresh(world: list[TrainingExample], snap: Path) -> None:
    assert get_analytics(directory=snap).summary["total_examples"] == 5
    _session({"category": "refactoring"}, quality_score=0.5)
    analytics = get_analytics(directory=snap)
    assert analytics.summary["total_examples"] == 6
    assert "refactoring" in {r["category"] for r in _table(analytics, "by_category_difficulty")}


def test_a_review_change_shows_after_one_refresh(
    world: list[TrainingExample], reviewer: User, snap: Path
) -> None:
    assert get_analytics(directory=snap).summary["golden_examples"] == 2
    set_golden([world[1].pk], reviewer, True)
    assert get_analytics(directory=snap).summary["golden_examples"] == 3
    message = make_message(
        world[1].execution, assistant_payload([{"type": "text", "text": "hm"}], response="r9")
    )
    mark_step(world[1], message, reviewer)
    rows = _table(get_analytics(directory=snap), "review_by_reviewer")
    assert rows[0]["golden"] == 2 and rows[0]["bad_steps"] == 1
    assert Message.objects.count() == 1


def test_without_refresh_the_snapshot_is_read_as_it_is(
    world: list[TrainingExample], snap: Path
) -> None:
    get_analytics(directory=snap)
    _session({"category": "refactoring"})
    assert get_analytics(refresh=False, directory=snap).summary["total_examples"] == 5


def test_a_refresh_writes_only_the_delta(world: list[TrainingExample], snap: Path) -> None:
    first = refresh_snapshot(directory=snap)
    assert first.full and first.changed == 5
    assert refresh_snapshot(directory=snap).changed == 0  # nothing new: no file written
    assert len(current_files(snap)) == 1
    new = [_session({"category": "refactoring"}) for _ in range(3)]
    stats = refresh_snapshot(directory=snap)
    assert (stats.full, stats.changed, stats.deleted) == (False, 3, 0)
    delta = pq.read_table(current_files(snap)[-1])
    assert sorted(delta.column("id").to_pylist()) == sorted(e.pk for e in new)


def test_deleted_examples_leave_the_snapshot(world: list[TrainingExample], snap: Path) -> None:
    refresh_snapshot(directory=snap)
    gone = world[2].pk
    world[2].execution.delete()
    stats = refresh_snapshot(directory=snap)
    assert (stats.changed, stats.deleted) == (0, 1)
    assert get_analytics(directory=snap).summary["total_examples"] == 4
    assert pq.read_table(current_files(snap)[-1]).column("id").to_pylist() == [gone]


def test_compaction_merges_the_deltas_into_one_base(
    world: list[TrainingExample], snap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refresh_snapshot(directory=snap)
    monkeypatch.setattr(snapshot, "COMPACT_FILES", 2)
    for _ in range(2):
        _session({"category": "refactoring"})
        stats = refresh_snapshot(directory=snap)
    assert stats.compacted
    assert len(current_files(snap)) == 1
    assert get_analytics(refresh=False, directory=snap).summary["total_examples"] == 7


def test_a_full_refresh_rebuilds_from_the_database(
    world: list[TrainingExample], snap: Path
) -> None:
    refresh_snapshot(directory=snap)
    # A change the watermark can't see (an update() that leaves updated_at alone, long ago).
    TrainingExample.objects.filter(pk=world[0].pk).update(quality_score=0.1)
    stats = refresh_snapshot(full=True, directory=snap)
    assert stats.full and stats.changed == 5
    analytics = get_analytics(refresh=False, directory=snap)
    expected = TrainingExample.objects.aggregate(q=Avg("quality_score"))["q"]
    assert analytics.summary["avg_quality"] == pytest.approx(expected)


def test_the_default_snapshot_lives_under_the_data_dir_per_database(
    world: list[TrainingExample], settings: Any, tmp_path: Path
) -> None:
    settings.DATA_DIR = tmp_path
    assert get_analytics().summary["total_examples"] == 5
    (directory,) = (tmp_path / "analytics").iterdir()
    assert directory.name.startswith(("sqlite-", "postgresql-"))
    assert (directory / "state.json").exists()


def test_a_refresh_reads_in_full_only_the_rows_whose_key_is_new(
    world: list[TrainingExample], snap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refresh_snapshot(directory=snap)
    read: list[int] = []
    cheap_rows = snapshot._cheap_rows
    monkeypatch.setattr(snapshot, "_cheap_rows", lambda qs: _kept(cheap_rows(qs), read))
    # Every example is inside the window before the watermark: none changed, none is read.
    assert refresh_snapshot(directory=snap).changed == 0
    assert read == []
    world[3].quality_score = 0.11
    world[3].save()
    stats = refresh_snapshot(directory=snap)
    assert (stats.changed, read) == (1, [world[3].pk])


def _kept(table: Any, read: list[int]) -> Any:
    read.extend(table.column("id").to_pylist())
    return table


def test_a_change_committed_late_inside_the_window_is_still_seen(
    world: list[TrainingExample], snap: Path
) -> None:
    refresh_snapshot(directory=snap)
    state = snapshot.read_state(snap)
    assert state is not None
    watermark = dt.datetime.fromisoformat(state["watermark"])
    # Written with an updated_at older than the watermark, as a transaction that commits late.
    late = watermark - snapshot.LAG / 2
    TrainingExample.objects.filter(pk=world[0].pk).update(quality_score=0.05, updated_at=late)
    assert refresh_snapshot(directory=snap).changed == 1
    analytics = get_analytics(refresh=False, directory=snap)
    expected = TrainingExample.objects.aggregate(q=Avg("quality_score"))["q"]
    assert analytics.summary["avg_quality"] == pytest.approx(expected)


def test_a_refresh_that_may_not_wait_leaves_a_locked_snapshot_alone(
    world: list[TrainingExample], snap: Path
) -> None:
    refresh_snapshot(directory=snap)
    _session({"category": "refactoring"})
    with open(snap / "lock", "w") as lock:  # another process, refreshing
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert refresh_snapshot(directory=snap, wait=False) is None
    stats = refresh_snapshot(directory=snap, wait=False)
    assert stats is not None and stats.changed == 1


def test_the_snapshot_says_when_its_data_was_read(world: list[TrainingExample], snap: Path) -> None:
    before = timezone.now()
    refresh_snapshot(directory=snap)
    built = get_analytics(refresh=False, directory=snap).as_of
    assert built is not None and before <= built <= timezone.now()
    refresh_snapshot(directory=snap)
    assert get_analytics(refresh=False, directory=snap).as_of > built  # type: ignore[operator]
