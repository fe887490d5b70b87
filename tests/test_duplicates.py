from __future__ import annotations

from typing import Any

import pytest

from collection.duplicates import conversation, fingerprint, mark_duplicates
from collection.lifecycle import Outcome, finish
from collection.models import Execution, Task, TaskStatus, TrainingExample
from tests.factories import make_execution, make_task

pytestmark = pytest.mark.django_db


def session(run: str, *, test_output: str = "3 passed") -> list[dict[str, Any]]:
    """One fix-the-test conversation as stream-json payloads; `run` names everything that
    differs between two recordings of it (uuids, ids, session, signatures, usage, cost)."""
    return [
        {"type": "system", "subtype": "init", "session_id": run, "uuid": f"{run}-0"},
        {
            "type": "user",
            "uuid": f"{run}-1",
            "session_id": run,
            "timestamp": f"2026-01-0{len(run) % 9 + 1}T10:00:00Z",
            "message": {"role": "user", "content": "Make tests/test_math.py pass"},
        },
        {
            "type": "assistant",
            "uuid": f"{run}-2",
            "session_id": run,
            "message": {
                "id": f"msg_{run}_1",
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": f"Plan {run}", "signature": f"sig-{run}"},
                    {"type": "text", "text": "Running the tests first."},
                    {
                        "type": "tool_use",
                        "id": f"toolu_{run}",
                        "name": "Bash",
                        "input": {"command": "pytest -q"},
                    },
                ],
                "usage": {"input_tokens": len(run) * 100, "output_tokens": 20},
            },
        },
        {
            "type": "user",
            "uuid": f"{run}-3",
            "session_id": run,
            "tool_use_result": {"stdout": test_output, "interrupted": False},
            "message": {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"toolu_{run}", "content": test_output}
                ],
            },
        },
        {
            "type": "assistant",
            "uuid": f"{run}-4",
            "session_id": run,
            "message": {
                "id": f"msg_{run}_2",
                "role": "assistant",
                "content": [{"type": "text", "text": "The tests pass."}],
            },
        },
        {"type": "result", "subtype": "success", "session_id": run, "total_cost_usd": 0.01},
    ]


def collect(
    run: str, task: Task, *, cost_usd: float = 0.01, **kw: Any
) -> tuple[Execution, TrainingExample]:
    execution = make_execution(task, session_id=run, cost_usd=cost_usd)
    for payload in session(run, **kw):
        execution.append_message(payload)
    return execution, finish(execution, Outcome(TaskStatus.COMPLETED, True))


def test_identical_trajectories_are_marked_duplicates_of_the_earliest():
    task = make_task()
    _, first = collect("sess-a", task, cost_usd=0.01)
    _, second = collect("sess-bb", task, cost_usd=0.37)
    _, third = collect("sess-ccc", task, cost_usd=0.02)

    assert first.fingerprint == second.fingerprint == third.fingerprint
    assert len(first.fingerprint) == 64
    assert (first.duplicate_of, second.duplicate_of, third.duplicate_of) == (None, first, first)
    assert list(first.duplicates.order_by("pk")) == [second, third]


def test_one_different_tool_result_is_not_a_duplicate():
    task = make_task()
    _, first = collect("sess-a", task)
    _, other = collect("sess-b", task, test_output="1 failed, 2 passed")

    assert other.fingerprint != first.fingerprint
    assert other.duplicate_of is None


def test_the_same_conversation_on_another_task_is_not_a_duplicate():
    _, first = collect("sess-a", make_task())
    _, other = collect("sess-b", make_task(name="Another task"))

    assert other.fingerprint != first.fingerprint
    assert other.duplicate_of is None


def test_how_a_response_is_split_into_messages_does_not_matter():
    whole = session("sess-a")
    split = [*whole[:2]]
    blocks = whole[2]["message"]["content"]
    for n, block in enumerate(blocks):
        split.append(
            whole[2] | {"uuid": f"part-{n}", "message": whole[2]["message"] | {"content": [block]}}
        )
    split += whole[3:]

    assert list(conversation(split)) == list(conversation(whole))


def test_what_a_conversation_keeps_for_the_fingerprint():
    assert list(conversation(session("sess-a"))) == [
        ["user", "text", "Make tests/test_math.py pass"],
        ["assistant", "text", "Running the tests first."],
        ["assistant", "tool_use", "Bash", {"command": "pytest -q"}],
        ["user", "tool_result", "3 passed", False],
        ["assistant", "text", "The tests pass."],
    ]


def test_an_empty_trajectory_has_no_fingerprint_and_is_nobodys_duplicate():
    task = make_task()
    examples = [
        finish(make_execution(task, session_id=f"s-{n}"), Outcome(TaskStatus.COMPLETED, True))
        for n in range(2)
    ]

    assert [(e.fingerprint, e.duplicate_of) for e in examples] == [("", None), ("", None)]
    assert fingerprint(examples[0].execution) == ""


def test_when_the_original_is_deleted_the_next_mark_promotes_the_earliest_left():
    task = make_task()
    _, first = collect("sess-a", task)
    _, second = collect("sess-b", task)
    _, third = collect("sess-c", task)

    first.delete()
    third = mark_duplicates(third)
    second.refresh_from_db()

    assert (second.duplicate_of, third.duplicate_of) == (None, second)


def test_finishing_an_execution_again_keeps_its_place_as_the_original():
    task = make_task()
    execution, first = collect("sess-a", task)
    _, second = collect("sess-b", task)

    again = finish(execution, Outcome(TaskStatus.COMPLETED, True))
    second.refresh_from_db()

    assert (again.pk, again.duplicate_of, second.duplicate_of) == (first.pk, None, first)


def test_the_example_list_leaves_duplicates_out_when_asked(client, viewer):
    task = make_task()
    _, first = collect("sess-a", task)
    _, second = collect("sess-b", task)
    client.force_login(viewer)

    everything = client.get("/examples/")
    without = client.get("/examples/", {"duplicates": "exclude"})
    only = client.get("/examples/", {"duplicates": "only"})

    assert f'id="example-{second.pk}"' in everything.text
    assert f"duplicate of #{first.pk}" in everything.text
    assert f'id="example-{second.pk}"' not in without.text
    assert f'id="example-{first.pk}"' in without.text
    assert f'id="example-{first.pk}"' not in only.text
    assert f'id="example-{second.pk}"' in only.text
    assert '<option value="exclude" selected>Left out</option>' in without.text


def test_the_mark_duplicates_command_fingerprints_examples_stored_before_detection():
    from io import StringIO

    from django.core.management import call_command

    task = make_task()
    _, first = collect("sess-a", task)
    _, second = collect("sess-bb", task)
    # As they were before duplicate detection existed.
    TrainingExample.objects.update(fingerprint="", duplicate_of=None)
    out = StringIO()
    call_command("mark_duplicates", "--dry-run", stdout=out)
    assert out.getvalue() == "would fingerprint 2 examples\n"
    assert not TrainingExample.objects.exclude(fingerprint="").exists()
    call_command("mark_duplicates", stdout=out)
    assert out.getvalue().endswith("fingerprinted 2 examples; 1 are duplicates\n")
    second.refresh_from_db()
    assert second.duplicate_of == first and len(second.fingerprint) == 64
