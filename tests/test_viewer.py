"""The trajectory builder and its rendering, on real transcripts imported through the
importers and on sessions stored by the live recorder."""

from __future__ import annotations

from pathlib import Path

import pytest

from collection.importers import import_file
from collection.models import Execution, StepMark
from collection.viewer import build_trajectory
from collection.viewer.build import Trajectory
from collection.viewer.cards import card_for
from collection.viewer.render import diff_lines, markdown_html, preview
from collection.viewer.tools import tool_view
from collection.viewer.tree import Note, Thread, ToolCard, Turn
from tests.factories import (
    assistant_payload,
    make_example,
    make_execution,
    make_message,
    make_tool_call,
    make_trajectory,
    tool_use,
)

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"


def _imported(name: str) -> Execution:
    report = import_file(FIXTURES / name)
    return Execution.objects.get(pk=report.sessions[0].execution_id)


def _turns(thread: Thread) -> list[Turn]:
    return [item for item in thread.items if isinstance(item, Turn)]


def _notes(thread: Thread, kind: str) -> list[Note]:
    return [item for item in thread.items if isinstance(item, Note) and item.kind == kind]


def _cards(thread: Thread) -> list[ToolCard]:
    return [
        block.card
        for turn in _turns(thread)
        for step in turn.steps
        for block in step.blocks
        if block.card is not None
    ]


@pytest.fixture
def subagent_session(db) -> Trajectory:
    return build_trajectory(_imported("spotter__subagent.jsonl"))


def test_the_prompt_text_and_thinking_of_a_real_session_are_read(subagent_session):
    thread = subagent_session.thread
    assert "create the beads" in [note.text for note in _notes(thread, "prompt")]
    first = _turns(thread)[0]
    kinds = [block.kind for block in first.steps[0].blocks]
    assert kinds[:2] == ["thinking", "text"]  # the blank "\n\n" text block is dropped
    assert first.steps[0].blocks[0].text.startswith("Let me research the fastest way")
    closing = _turns(thread)[-1].steps[-1].blocks[-1]
    assert "<h2>Beads Created</h2>" in closing.html
    assert "<table>" in closing.html  # Markdown tables


def test_tool_calls_are_paired_with_their_results(subagent_session):
    cards = {card.tool_use_id: card for card in _cards(subagent_session.thread)}
    glob = cards["toolu_01MumzJGYTo26Ds3LsuSkd5Z"]
    assert (glob.name, glob.key_arg, glob.answered, glob.is_error) == (
        "Glob",
        "**/mix.exs",
        True,
        False,
    )
    assert glob.output is not None and glob.output.cut
    assert glob.output.text.startswith("/home/marco/projects/spotter/deps/sourceror/mix.exs")
    bash = cards["toolu_01GQF49Kuk9RfLFgjBJFeD8H"]
    assert bash.key_arg == "bd dep add spotter-0p7.2 spotter-0p7.1"
    assert bash.exit_status == 0 and bash.card == "bash"


def test_a_turn_carries_its_usage_cost_and_duration(subagent_session):
    first = _turns(subagent_session.thread)[0]
    assert (first.usage.input, first.usage.output) == (2, 10)
    assert (first.usage.cache_read, first.usage.cache_creation) == (17915, 10245)
    assert first.cost is not None and first.cost > 0 and first.cost_estimated
    assert first.duration_s is not None and first.duration_s > 0
    assert first.model == "claude-opus-4-6"


def test_sub_agent_turns_nest_under_the_task_call_with_their_own_totals(subagent_session):
    task = next(card for card in _cards(subagent_session.thread) if card.name == "Task")
    assert task.card == "agent" and task.subagent_type == "Plan"
    assert task.subagent is not None and task.subagent.turns == 5
    assert task.subagent.usage.total > 0 and task.subagent.cost > 0
    assert task.subagent_anchor == "subagent-1" and subagent_session.first_subagent == "subagent-1"
    nested = _cards(task.subagent)
    assert all(card.name in ("Read", "Bash") for card in nested)
    main_models = {turn.model for turn in _turns(subagent_session.thread)}
    assert main_models == {"claude-opus-4-6"}  # the sub-agent's haiku turns are not at the top


def test_tool_errors_are_marked_and_chained_for_the_jump_links(subagent_session):
    errors = [c for c in _cards(subagent_session.thread) if c.is_error]
    task = next(card for card in _cards(subagent_session.thread) if card.name == "Task")
    assert task.subagent is not None
    nested_errors = [c for c in _cards(task.subagent) if c.is_error]
    assert errors == [] and len(nested_errors) == 3
    assert [c.error_anchor for c in nested_errors] == ["error-1", "error-2", "error-3"]
    assert [c.next_error for c in nested_errors] == ["error-2", "error-3", ""]
    assert "EISDIR" in (nested_errors[0].output.text if nested_errors[0].output else "")
    assert subagent_session.tool_errors == 3 and subagent_session.first_error == "error-1"


def test_write_shows_the_file_highlighted(subagent_session):
    write = next(card for card in _cards(subagent_session.thread) if card.name == "Write")
    assert write.card == "write" and write.key_arg == "/home/marco/projects/spotter/plan.md"
    assert write.file_html is not None and 'class="' in write.file_html  # pygments classes
    assert "style=" not in write.file_html


def test_bookkeeping_lines_are_listed_not_read(subagent_session):
    aux = _notes(subagent_session.thread, "aux")
    kinds = {line.kind for note in aux for line in note.aux}
    assert {"progress", "file-history-snapshot"} <= kinds
    assert sum(len(note.aux) for note in aux) > 20


def test_the_system_init_is_one_line(db):
    trajectory = build_trajectory(_imported("gleam__tool_session.jsonl"))
    line = "claude-opus-4-5-20251101 · 17 tools · /home/cyou/claude-agent-sdk-gleam"
    assert trajectory.init_line == line
    assert [note.text for note in _notes(trajectory.thread, "init")] == [line]
    assert trajectory.result_subtype == "success"
    assert _notes(trajectory.thread, "result")[0].text.startswith("success · 2 turns · $0.2472")


def test_edit_is_a_highlighted_diff(db):
    card = card_for(
        "t1",
        "Edit",
        {"file_path": "calc.py", "old_string": "x = a - b\n", "new_string": "x = a + b\n"},
        None,
    )
    assert [line.kind for line in card.diff] == ["del", "add"]
    assert '<span class="o">+</span>' in card.diff[1].html
    assert not card.answered and card.output is None


def test_multi_edit_diffs_every_edit(db):
    edits = [
        {"old_string": "a = 1", "new_string": "a = 2"},
        {"old_string": "b = 1", "new_string": "b = 1\nc = 3"},
    ]
    card = card_for("t1", "MultiEdit", {"file_path": "m.py", "edits": edits}, None)
    assert [line.kind for line in card.diff] == ["del", "add", "sep", "ctx", "add"]


def test_a_long_diff_is_cut_and_the_full_card_has_all_of_it(db):
    old = "".join(f"a{i} = {i}\n" for i in range(300))
    given = {"file_path": "big.py", "old_string": old, "new_string": old.replace("=", ":=")}
    assert card_for("t1", "Edit", given, None).diff_cut
    full = card_for("t1", "Edit", given, None, full=True)
    assert len(full.diff) == 600 and not full.diff_cut


def test_todo_write_is_a_checklist(db):
    todos = [{"content": "Read", "status": "completed"}, {"content": "Fix", "status": "pending"}]
    card = card_for("t1", "TodoWrite", {"todos": todos}, None)
    assert card.card == "todo"
    assert [(t.content, t.status) for t in card.todos] == [
        ("Read", "completed"),
        ("Fix", "pending"),
    ]


def test_a_failed_command_shows_its_exit_status(db):
    execution = make_execution()
    call = make_tool_call(
        execution,
        1,
        name="Bash",
        input={"command": "make"},
        result="Exit code 2\nboom",
        is_error=True,
    )
    card = card_for(call.tool_use_id, "Bash", call.input, call)
    assert card.is_error and card.exit_status == 2


def test_the_key_argument_comes_from_the_tool_registry():
    assert tool_view("Grep").key_arg({"pattern": "def main", "path": "src"}) == "def main"
    assert (
        tool_view("WebFetch").key_arg({"url": "https://x.test", "prompt": "p"}) == "https://x.test"
    )
    assert tool_view("Agent").key_arg({"description": "Find bugs", "prompt": "…"}) == "Find bugs"
    assert tool_view("SomeMcpTool").key_arg({"path": "/tmp/x"}) == "/tmp/x"


def test_a_live_session_groups_one_response_split_over_messages_into_one_turn(db):
    execution = make_execution()
    thinking = {"type": "thinking", "thinking": "Look first."}
    make_message(
        execution, assistant_payload([thinking], response="msg_1", output_tokens=5), uuid="a"
    )
    call = tool_use("toolu_1", "Read", file_path="a.py")
    make_message(execution, assistant_payload([call], response="msg_1", output_tokens=9), uuid="b")
    trajectory = build_trajectory(execution)
    (turn,) = _turns(trajectory.thread)
    assert len(turn.steps) == 2 and turn.usage.output == 9  # the last usage, not a sum


def test_step_marks_of_the_example_are_on_their_steps(db, django_assert_num_queries):
    execution = make_trajectory(turns=2)
    example = make_example(execution)
    first = execution.messages.filter(type="assistant").order_by("seq").first()
    assert first is not None
    mark = StepMark.objects.create(example=example, message=first, comment="wrong case")
    with django_assert_num_queries(4):
        trajectory = build_trajectory(execution, example=example)
    steps = [step for turn in _turns(trajectory.thread) for step in turn.steps]
    assert steps[0].mark == mark and all(step.mark is None for step in steps[1:])


def test_tool_results_are_not_loaded_with_the_messages(db, django_assert_num_queries):
    execution = make_trajectory(turns=3, output_lines=2000)
    with django_assert_num_queries(3):
        trajectory = build_trajectory(execution)
    outputs = [card.output for card in _cards(trajectory.thread) if card.output]
    assert len(outputs) == 3 and all(o.cut and len(o.text) <= 700 for o in outputs)


def test_markdown_keeps_html_as_text_and_drops_dangerous_links():
    html = markdown_html('<script>x()</script> [a](javascript:alert(1)) <img src=x onerror="y()">')
    assert (
        "<script" not in html
        and "<img" not in html
        and "javascript:" not in html.replace("[a](javascript:alert(1))", "")
    )
    assert "&lt;script&gt;" in html
    assert 'href="' not in html


def test_markdown_links_are_kept_with_a_safe_rel():
    html = markdown_html("[docs](https://example.com/a)")
    assert 'href="https://example.com/a"' in html and 'rel="noopener noreferrer nofollow"' in html


def test_a_diff_escapes_html_in_code():
    (line,) = diff_lines("", "<script>alert(1)</script>", "x.html")[-1:]
    assert "<script>" not in line.html and "&lt;" in line.html


def test_a_preview_cuts_at_a_line_end():
    cut = preview("\n".join(f"line {i}" for i in range(100)))
    assert cut.cut and cut.text.endswith("line 7") and cut.lines == 100
    assert not preview("short").cut


def test_an_assistant_message_of_another_shape_shows_what_it_holds(db):
    execution = make_execution()
    make_message(execution, {"type": "assistant", "uuid": "odd", "text": "<b>looking</b>"})
    (turn,) = _turns(build_trajectory(execution).thread)
    (block,) = turn.steps[0].blocks
    assert block.kind == "other" and "<b>looking</b>" in block.text  # escaped by the template


def test_a_live_sessions_prompt_is_shown_from_what_the_collector_kept(db):
    # query() sends the prompt without a stored user message: the collector keeps it in metadata.
    execution = make_execution(metadata={"prompt": "Make **test_stats.py** pass"})
    init = {"type": "system", "subtype": "init", "uuid": "i", "model": "m", "tools": []}
    make_message(execution, init)
    make_message(execution, assistant_payload([{"type": "text", "text": "On it."}], response="r"))
    items = build_trajectory(execution).thread.items
    assert [type(i).__name__ for i in items] == ["Note", "Note", "Turn"]
    prompt = items[1]
    assert isinstance(prompt, Note) and prompt.kind == "prompt" and prompt.raw_url == ""
    assert "<strong>test_stats.py</strong>" in str(prompt.html)


def test_a_stored_prompt_is_not_shown_twice(db):
    execution = make_trajectory(make_execution(metadata={"prompt": "Fix the tests"}))
    assert len(_notes(build_trajectory(execution).thread, "prompt")) == 1


def test_system_notices_without_text_fold_into_one_bookkeeping_line(db):
    execution = make_execution()
    for n in range(4):
        make_message(execution, {"type": "system", "subtype": "thinking_tokens", "uuid": f"t{n}"})
    notice = {"type": "system", "subtype": "compact_boundary", "uuid": "c", "content": "Compacted"}
    make_message(execution, notice)
    thread = build_trajectory(execution).thread
    assert [len(n.aux) for n in _notes(thread, "aux")] == [4]
    assert [n.text for n in _notes(thread, "system")] == ["compact_boundary · Compacted"]
