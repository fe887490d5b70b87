"""The importer registry, sniffing, the price table and the Python API's report."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from collection.importers import (
    IMPORTERS,
    ImportReport,
    NotATranscript,
    TranscriptError,
    import_file,
    import_paths,
    importer_for,
)
from collection.importers.pricing import estimate_cost
from collection.importers.reading import read_head
from collection.models import Execution, Message, ToolCall
from collection.schema import TaskExecution

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"
SAMPLES = {
    "spotter__short.jsonl": "claude_code",
    "spotter__tool_heavy.jsonl": "claude_code",
    "spotter__subagent.jsonl": "claude_code",
    "spotter__agent-aac57f5.jsonl": "claude_code",
    "spotter__agent-acompact-946d2b.jsonl": "claude_code",
    "gleam__basic_query.ndjson": "stream_json",
    "gleam__tool_session.jsonl": "stream_json",
    "sweagent__function_calling_simple.traj": "swe_agent",
    "openhands__basic.json": "openhands",
}


@pytest.mark.parametrize(("name", "importer"), SAMPLES.items())
def test_each_sample_is_recognised_by_its_importer(name: str, importer: str) -> None:
    assert importer_for(read_head(FIXTURES / name)) is IMPORTERS[importer]


def test_a_swe_agent_trajectory_is_recognised_by_its_content_too(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    shutil.copy(FIXTURES / "sweagent__function_calling_simple.traj", path)

    assert importer_for(read_head(path)) is IMPORTERS["swe_agent"]


def test_an_unrecognised_file_raises_the_one_error_type(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text('[{"id": 1, "name": "x"}]\n')

    with pytest.raises(NotATranscript) as caught:
        importer_for(read_head(path))

    assert isinstance(caught.value, TranscriptError) and caught.value.retryable is False
    assert str(caught.value).startswith(f"{path}:1: not a transcript")


@pytest.mark.django_db
def test_an_importer_can_be_named_instead_of_sniffed(tmp_path: Path) -> None:
    report = import_file(FIXTURES / "gleam__basic_query.ndjson", importer="stream_json")
    assert report.imported == 1

    wrong = import_file(FIXTURES / "gleam__basic_query.ndjson", importer="nonsense")
    assert wrong.errors[0].reason.startswith("no importer 'nonsense'")


@pytest.mark.parametrize("frame", ["gleam__basic_query.ndjson", "gleam__tool_session.jsonl"])
def test_the_price_table_gives_the_cost_the_cli_reported(frame: str) -> None:
    result = json.loads((FIXTURES / frame).read_text().splitlines()[-1])
    if "modelUsage" in result:
        ((model, usage),) = result["modelUsage"].items()
        usage = {
            "input_tokens": usage["inputTokens"],
            "output_tokens": usage["outputTokens"],
            "cache_creation_input_tokens": usage["cacheCreationInputTokens"],
            "cache_read_input_tokens": usage["cacheReadInputTokens"],
        }
        expected = result["modelUsage"][model]["costUSD"]
    else:
        model, usage, expected = (
            "claude-opus-4-5-20251101",
            result["usage"],
            result["total_cost_usd"],
        )

    assert estimate_cost(model, usage) == pytest.approx(expected)


def test_models_are_priced_by_family_and_unknown_ones_are_not_guessed() -> None:
    usage = {"input_tokens": 1_000_000}
    assert estimate_cost("claude-sonnet-4-5-20250929", usage) == pytest.approx(3.0)
    assert estimate_cost("anthropic/claude-3-5-sonnet-20241022", usage) == pytest.approx(3.0)
    assert estimate_cost("claude-opus-4-1-20250805", usage) == pytest.approx(15.0)
    assert estimate_cost("some-local-model", usage) is None


@pytest.mark.django_db
def test_a_dry_run_reads_everything_and_stores_nothing() -> None:
    report = import_paths([FIXTURES], dry_run=True)

    transcripts = [f for f in FIXTURES.iterdir() if f.suffix != ".md"]
    assert report.dry_run and report.imported == len(transcripts)
    assert report.execution_ids == []
    assert not Execution.objects.exists() and not Message.objects.exists()
    assert report.summary().splitlines()[0].count("would import") == 1


@pytest.mark.django_db
def test_the_report_serialises_with_its_counts() -> None:
    report = import_paths([FIXTURES / "spotter__short.jsonl", FIXTURES / "missing.jsonl"])

    data = report.model_dump()
    assert (data["imported"], data["skipped"], data["failed"]) == (1, 0, 0)
    assert data["sessions"][0]["execution_id"] == Execution.objects.get().pk
    assert data["errors"] == [
        {
            "file": str(FIXTURES / "missing.jsonl"),
            "line": None,
            "reason": "no such file, folder or match",
        }
    ]
    assert ImportReport.model_validate(data).errors[0].reason == data["errors"][0]["reason"]


@pytest.mark.django_db
def test_progress_is_reported_in_bytes() -> None:
    class Bar:
        total: float | None = None
        done = 0.0

        def reset(self, total: float | None = None) -> None:
            self.total = total

        def update(self, n: float = 1) -> None:
            self.done += n

    bar = Bar()
    files = [FIXTURES / "spotter__short.jsonl", FIXTURES / "gleam__basic_query.ndjson"]

    import_paths(files, progress=bar)

    assert bar.total == bar.done == sum(f.stat().st_size for f in files)


# --- statements per session -----------------------------------------------------------------

TOOL_HEAVY = FIXTURES / "spotter__tool_heavy.jsonl"
# Every key that must differ between copies of the session: uuids, tool ids, response ids.
KEYS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?:toolu|msg)_\w+")


def longer_session(tmp_path: Path, copies: int) -> tuple[Path, list[dict]]:
    """The tool-heavy transcript `copies` times over, as one session (its own id) with every
    other key made unique per copy; returns the file and its records."""
    text = TOOL_HEAVY.read_text()
    session = json.loads(text.splitlines()[1])["sessionId"]
    lines = []
    for copy in range(copies):
        renamed = KEYS.sub(lambda m: f"{m.group()[:-4]}{copy:04d}", text)  # noqa: B023 - used at once
        lines += renamed.replace(session[:-4] + f"{copy:04d}", f"session-{copies}").splitlines()
    path = tmp_path / f"{copies}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, [json.loads(line) for line in lines]


def message_count(records: list[dict]) -> int:
    """Every line is a message, except that the lines of one response make one."""
    responses = {r["message"]["id"] for r in records if r["type"] == "assistant"}
    return sum(1 for r in records if r["type"] != "assistant") + len(responses)


def tool_use_ids(records: list[dict]) -> set[str]:
    return {
        block["id"]
        for r in records
        if r["type"] == "assistant"
        for block in r["message"]["content"]
        if block["type"] == "tool_use"
    }


def statements(path: Path) -> int:
    with CaptureQueriesContext(connection) as queries:
        report = import_file(path)
    assert report.ok, report.summary()
    return len(queries)


@pytest.mark.django_db
def test_a_session_costs_as_many_statements_whatever_its_length(tmp_path: Path) -> None:
    first, short_records = longer_session(tmp_path, 1)
    short, _ = longer_session(tmp_path, 2)
    long, long_records = longer_session(tmp_path, 6)
    statements(first)  # creates the sessions' task, which the others then share

    few, many = statements(short), statements(long)

    assert few == many
    long_run = Execution.objects.get(session_id="session-6")
    assert long_run.messages.count() == message_count(long_records) > 6 * 20
    calls = set(long_run.tool_calls.values_list("tool_use_id", flat=True))
    assert calls == tool_use_ids(long_records) and len(calls) == 6 * len(
        tool_use_ids(short_records)
    )
    assert not long_run.tool_calls.filter(result__isnull=True).exists()


@pytest.mark.django_db
def test_a_reimport_is_a_lookup_whatever_the_session_length(tmp_path: Path) -> None:
    short, _ = longer_session(tmp_path, 1)
    long, long_records = longer_session(tmp_path, 6)
    statements(short), statements(long)
    stored = list(Message.objects.order_by("pk").values_list("pk", "uuid", "seq"))

    few, many = statements(short), statements(long)

    assert few == many
    assert list(Message.objects.order_by("pk").values_list("pk", "uuid", "seq")) == stored
    assert ToolCall.objects.filter(execution__session_id="session-6").count() == len(
        tool_use_ids(long_records)
    )


@pytest.mark.django_db
def test_scoring_reads_no_tool_output(tmp_path: Path) -> None:
    path, records = longer_session(tmp_path, 1)
    import_file(path)
    execution = Execution.objects.get()

    with CaptureQueriesContext(connection) as queries:
        record = TaskExecution.from_execution(execution)

    calls = [q["sql"] for q in queries if '"collection_toolcall"' in q["sql"]]
    assert calls and not any('"collection_toolcall"."result"' in sql for sql in calls)
    assert {c.name for c in record.tool_calls} == {
        block["name"]
        for r in records
        if r["type"] == "assistant"
        for block in r["message"]["content"]
        if block["type"] == "tool_use"
    }
    assert all(c.result is None for c in record.tool_calls)
