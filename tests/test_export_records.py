"""exports.records: the one conversion from a stored trajectory to export records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from collection.importers import import_file
from collection.models import Execution, StepMark, TaskStatus, TrainingExample
from collection.sessions.trajectory import TrajectoryRecorder
from exports import records as records_module
from exports.options import ExportOptions
from exports.records import KNOWN_TOOLS, Record, load_records
from tests.factories import (
    assistant_payload,
    make_example,
    make_execution,
    make_task,
    make_trajectory,
    result_payload,
    tool_use,
)

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"
TASK_CALL = "toolu_01Cz2Pnv7qNcnK1ZiocxWhQX"  # the Task call in spotter__subagent.jsonl

pytestmark = pytest.mark.django_db


def records(options: ExportOptions | None = None, **kw: Any) -> list[Record]:
    return list(load_records(TrainingExample.objects.all(), options or ExportOptions(), **kw))


def recorded(payloads: list[dict[str, Any]], **execution: Any) -> TrainingExample:
    """An example whose session stored exactly these payloads, through the real recorder."""
    run = make_execution(status=TaskStatus.IN_PROGRESS, **execution)
    recorder = TrajectoryRecorder(run)
    for payload in payloads:
        recorder.record(payload)
    return make_example(Execution.objects.get(pk=run.pk))


def prompt(text: str) -> dict[str, Any]:
    return {"type": "user", "uuid": f"prompt-{text[:10]}", "message": {"content": text}}


def part(blocks: list[dict[str, Any]], *, response: str, uuid: str, **kw: Any) -> dict[str, Any]:
    """One stored part of a response: the live CLI sends each content block on its own."""
    return assistant_payload(blocks, response=response, **kw) | {"uuid": uuid}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def test_a_session_becomes_one_record_with_a_step_per_response() -> None:
    example = make_example(make_trajectory(turns=2))
    (record,) = records()
    assert record.id == f"ex-{example.pk}"
    assert (record.parent_id, record.spawned_by) == (None, None)
    assert record.prompt == "Fix the tests"
    assert [s.text for s in record.steps] == [
        "Running **case 1**.",
        "Running **case 2**.",
        "All cases pass.",
    ]
    first = record.steps[0].tool_calls[0]
    assert (first.id, first.name, first.arguments) == (
        "toolu_1",
        "Bash",
        {"command": "pytest -k case_1"},
    )
    assert first.output == "case_1 line 0\ncase_1 line 1\ncase_1 line 2"
    assert (first.is_error, first.answered) == (False, True)
    assert record.final_text == "All cases pass."
    assert record.task.name == "Fix failing test"
    assert record.task.expected_outcomes == ["tests pass"]
    assert record.model == "claude-sonnet-4-5"
    assert record.steps[0].usage == {"input_tokens": 100, "output_tokens": 50}


def test_thinking_is_kept_only_when_asked() -> None:
    make_example(make_trajectory(turns=1))
    (without,) = records()
    (with_thinking,) = records(ExportOptions(include_thinking=True))
    assert [s.thinking for s in without.steps] == ["", ""]
    assert with_thinking.steps[0].thinking == "Turn 1: run the next case."


def test_the_parts_of_one_response_merge_into_one_step() -> None:
    call = tool_use("toolu_a", "Read", file_path="a.py")
    example = recorded(
        [
            prompt("Read a.py"),
            part([text("Reading it.")], response="msg_1", uuid="p1", output_tokens=5),
            part([call], response="msg_1", uuid="p2", output_tokens=9),
            result_payload("toolu_a", "print('a')"),
            part([text("It prints a.")], response="msg_2", uuid="p3"),
        ]
    )
    (record,) = records()
    first, second = record.steps
    parts = list(example.execution.messages.filter(type="assistant").order_by("seq"))
    assert first.message_ids == [parts[0].pk, parts[1].pk]
    assert first.text == "Reading it."
    assert [c.id for c in first.tool_calls] == ["toolu_a"]
    assert first.usage["output_tokens"] == 9  # the CLI repeats the usage so far on each part
    assert second.text == "It prints a."


def test_a_step_marked_bad_carries_the_reviewers_comment() -> None:
    example = make_example(make_trajectory(turns=2))
    second = example.execution.messages.filter(type="assistant").order_by("seq")[1]
    StepMark.objects.create(example=example, message=second, comment="ran the wrong case")
    (record,) = records()
    assert [s.bad for s in record.steps] == [False, True, False]
    assert record.steps[1].comment == "ran the wrong case"


def test_a_failed_call_an_unanswered_call_and_a_long_output_are_kept_as_they_are() -> None:
    long_output = "\n".join(f"line {n} " + "x" * 80 for n in range(3000))
    recorded(
        [
            prompt("Look around"),
            assistant_payload([tool_use("toolu_e", "Bash", command="cat nope")], response="m1"),
            result_payload("toolu_e", "cat: nope: No such file", is_error=True),
            assistant_payload([tool_use("toolu_l", "Bash", command="cat big")], response="m2"),
            result_payload("toolu_l", long_output),
            assistant_payload([tool_use("toolu_u", "Bash", command="sleep 99")], response="m3"),
            assistant_payload([{"type": "text", "text": "Gave up waiting."}], response="m4"),
        ]
    )
    (record,) = records()
    failed, long, unanswered = (s.tool_calls[0] for s in record.steps[:3])
    assert (failed.is_error, failed.output) == (True, "cat: nope: No such file")
    assert long.output == long_output  # whole: never cut with "..."
    assert (unanswered.answered, unanswered.output) == (False, "")


def test_calls_a_stopped_session_never_ran_are_dropped_from_its_end() -> None:
    # max_turns stops the session after the model asked for tools: nothing answered them.
    said_and_asked = [{"type": "text", "text": "Next, the tests."}, tool_use("toolu_b", "Bash")]
    recorded(
        [
            prompt("Fix it"),
            assistant_payload([tool_use("toolu_a", "Read", file_path="a.py")], response="m1"),
            result_payload("toolu_a", "print(1)"),
            assistant_payload(said_and_asked, response="m2"),
        ]
    )
    (record,) = records()
    assert [len(s.tool_calls) for s in record.steps] == [1, 0]
    assert record.steps[-1].text == "Next, the tests."

    recorded([prompt("Again"), assistant_payload([tool_use("toolu_c", "Bash")], response="m9")])
    assert [len(r.steps) for r in records()] == [2, 0]


def test_user_text_later_in_the_session_goes_with_the_step_after_it() -> None:
    recorded(
        [
            prompt("Fix it"),
            assistant_payload([text("Which file?")], response="m1"),
            prompt("utils.py, line 42"),
            assistant_payload([text("Fixed.")], response="m2"),
        ]
    )
    (record,) = records()
    assert record.prompt == "Fix it"
    assert [(s.user_text, s.text) for s in record.steps] == [
        ("", "Which file?"),
        ("utils.py, line 42", "Fixed."),
    ]


def test_a_live_sessions_prompt_comes_from_its_metadata() -> None:
    recorded(
        [assistant_payload([text("Done.")], response="m1")],
        metadata={"prompt": "Say done"},
    )
    (record,) = records()
    assert record.prompt == "Say done"


def test_tools_list_known_claude_code_schemas_and_infer_the_others() -> None:
    recorded(
        [
            prompt("Go"),
            assistant_payload(
                [
                    tool_use("t1", "Bash", command="ls", sandbox=True),
                    tool_use("t2", "mcp__db__query", sql="select 1", limit=5),
                ],
                response="m1",
            ),
            result_payload("t1", "a"),
            result_payload("t2", "1"),
        ]
    )
    (record,) = records()
    bash, query = record.tools
    assert bash["name"] == "Bash"
    assert bash["parameters"]["required"] == KNOWN_TOOLS["Bash"][1]["required"]
    assert bash["parameters"]["properties"]["sandbox"] == {"type": "boolean"}  # seen, not known
    assert query["parameters"]["properties"] == {
        "sql": {"type": "string"},
        "limit": {"type": "number"},
    }
    assert query["parameters"]["required"] == ["limit", "sql"]


def test_subagents_of_a_real_transcript_follow_their_coordinator_as_records() -> None:
    import_file(FIXTURES / "spotter__subagent.jsonl")
    example = TrainingExample.objects.get()
    coordinator, subagent = records()
    assert coordinator.id == f"ex-{example.pk}"
    assert coordinator.subagents == []
    assert subagent.id == f"ex-{example.pk}.agent-{TASK_CALL}"
    assert (subagent.parent_id, subagent.spawned_by) == (coordinator.id, TASK_CALL)
    assert subagent.prompt.startswith("Draft bead content for setting up Credo")
    assert subagent.model == "claude-haiku-4-5-20251001"
    first = subagent.steps[0].tool_calls[0]
    assert (first.name, first.is_error) == ("Read", True)
    assert first.output == "EISDIR: illegal operation on a directory, read"
    # the coordinator's Task call holds the sub-agent's report; the sub-agent's turns don't
    task_call = next(c for s in coordinator.steps for c in s.tool_calls if c.id == TASK_CALL)
    assert subagent.final_text == task_call.output
    assert all(c.id != TASK_CALL for s in subagent.steps for c in s.tool_calls)
    assert coordinator.final_text.startswith("## Beads Created")


def test_coordinator_only_leaves_subagents_out_and_nesting_keeps_them_inside() -> None:
    import_file(FIXTURES / "spotter__subagent.jsonl")
    (alone,) = records(ExportOptions(subagents="coordinator_only"))
    coordinator, _ = records()
    assert alone.subagents == []
    assert [s.message_ids for s in alone.steps] == [s.message_ids for s in coordinator.steps]
    (nested,) = records(nest_subagents=True)
    assert [r.spawned_by for r in nested.subagents] == [TASK_CALL]


def test_duplicates_and_non_golden_examples_are_left_out_when_asked() -> None:
    original = make_example(make_trajectory(), is_golden=True)
    copy = make_example(make_trajectory(make_execution(session_id="sess-2")))
    copy.duplicate_of = original
    copy.save()
    assert [r.example_id for r in records()] == [original.pk]
    kept = records(ExportOptions(exclude_duplicates=False))
    assert [r.example_id for r in kept] == [original.pk, copy.pk]
    plain = make_example(make_trajectory(make_execution(session_id="sess-3")))
    golden = records(ExportOptions(exclude_duplicates=False, golden_only=True))
    assert [r.example_id for r in golden] == [original.pk]
    assert plain.pk not in [r.example_id for r in golden]


def _examples(count: int) -> None:
    task = make_task()
    for n in range(count):
        make_example(make_trajectory(make_execution(task, session_id=f"s{n}"), turns=2))


def _queries(options: ExportOptions) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert len(records(options)) > 0
    return len(captured)


def test_reading_records_costs_the_same_queries_for_5_or_50_examples(
    django_assert_max_num_queries: Any,
) -> None:
    _examples(5)
    few = _queries(ExportOptions())
    _examples(45)
    with django_assert_max_num_queries(few):
        assert len(records()) == 50
    assert few <= 6  # examples, tasks, messages, tool calls, marks, and the empty chunk at the end


def test_each_chunk_costs_a_constant_number_of_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    _examples(50)
    monkeypatch.setattr(records_module, "CHUNK", 10)
    with CaptureQueriesContext(connection) as captured:
        ids = [r.example_id for r in records()]
    assert ids == sorted(ids) and len(ids) == 50  # in primary-key order
    assert len(captured) == 5 * 5 + 1  # five chunks of five queries, then the empty one
