"""The checks every export runs on every row before writing it."""

from __future__ import annotations

from typing import Any

import pytest

from exports.options import ExportOptions
from exports.validation import check_messages, check_row, estimate_tokens

pytestmark = pytest.mark.backend_independent


def _call(call_id: str, name: str = "Bash") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def _conversation() -> list[dict[str, Any]]:
    """A sound OpenAI-style session: system, prompt, two parallel calls, answers, a reply."""
    return [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Fix the tests"},
        {"role": "assistant", "content": None, "tool_calls": [_call("t1"), _call("t2", "Read")]},
        {"role": "tool", "tool_call_id": "t1", "content": "1 failed"},
        {"role": "tool", "tool_call_id": "t2", "content": ""},  # a command that printed nothing
        {"role": "assistant", "content": "Fixed: the assertion was off by one."},
    ]


def test_a_sound_conversation_has_no_problems() -> None:
    assert check_row("jsonl", {"messages": _conversation()}, ExportOptions()) == []


def test_tool_turns_that_name_their_tool_are_matched_in_order() -> None:
    # TRL's shape: tool turns carry the tool's name, not always a call id.
    messages = _conversation()
    for message in messages[3:5]:
        del message["tool_call_id"]
    messages[3]["name"], messages[4]["name"] = "Bash", "Read"

    assert check_messages(messages) == []


def test_content_parts_with_text_count_as_text() -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Fix the tests"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
    ]

    assert check_messages(messages) == []


def test_an_unanswered_tool_call_is_a_problem() -> None:
    messages = _conversation()
    del messages[4]

    assert check_messages(messages) == ["messages[4] (assistant): tool call t2 was never answered"]


def test_a_call_left_open_at_the_end_is_a_problem() -> None:
    messages = _conversation()[:4]

    assert check_messages(messages) == ["messages: tool call t2 was never answered"]


def test_a_tool_result_nobody_asked_for_is_a_problem() -> None:
    messages = _conversation()
    messages[4]["tool_call_id"] = "t9"

    problems = check_messages(messages)

    assert "messages[4] (tool): answers call t9 the assistant did not make (or answered twice)" in (
        problems
    )
    assert "messages[5] (assistant): tool call t2 was never answered" in problems


def test_a_tool_result_without_a_call_before_it_is_out_of_order() -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "t1", "content": "x"},
        {"role": "assistant", "content": "hello"},
    ]

    assert "messages[1] (tool): a tool result must follow the assistant's tool call" in (
        check_messages(messages)
    )


def test_a_late_system_message_and_an_unknown_role_are_out_of_order() -> None:
    messages = _conversation()
    messages.insert(2, {"role": "system", "content": "Be brief."})
    messages.append({"role": "narrator", "content": "The end."})

    problems = check_messages(messages)

    assert "messages[2] (system): a system message may only come first" in problems
    assert "messages[7] (narrator): unknown role" in problems


def test_the_assistant_may_not_speak_first() -> None:
    messages = [{"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Hi"}]

    problems = check_messages(messages)

    assert "messages[0] (assistant): the conversation must start with the user" in problems
    assert "messages: the conversation ends with an unanswered user turn" in problems


def test_two_user_turns_in_a_row_are_out_of_order() -> None:
    messages = [
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "ok"},
    ]

    assert check_messages(messages) == ["messages[1] (user): a user turn follows user"]


@pytest.mark.parametrize(
    ("message", "where"),
    [
        ({"role": "user", "content": "  "}, "messages[1] (user)"),
        ({"role": "user", "content": [{"type": "text", "text": ""}]}, "messages[1] (user)"),
        ({"role": "assistant", "content": None}, "messages[2] (assistant)"),
        ({"role": "assistant", "content": "", "tool_calls": []}, "messages[2] (assistant)"),
    ],
)
def test_empty_turns_are_problems(message: dict[str, Any], where: str) -> None:
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "Fix it"}]
    if message["role"] == "user":
        messages[1] = message
        messages.append({"role": "assistant", "content": "Done."})
    else:
        messages.append(message)

    assert f"{where}: empty turn" in check_messages(messages)


def test_a_conversation_without_an_assistant_turn_teaches_nothing() -> None:
    assert check_messages([{"role": "user", "content": "hello"}]) == [
        "messages: no assistant turn to learn from"
    ]


@pytest.mark.parametrize("messages", [[], None, "text", [["user", "hi"]]])
def test_messages_that_are_not_a_conversation_are_problems(messages: Any) -> None:
    assert check_messages(messages)


def test_rows_without_messages_get_only_the_size_check() -> None:
    row = {"instruction": "Fix the tests", "input": "", "output": "Done."}

    assert check_row("instruct", row, ExportOptions()) == []


def test_the_token_estimate_counts_string_and_number_characters_over_four() -> None:
    row = {
        "messages": [{"role": "user", "content": "x" * 30}],  # 4 + 30 characters
        "weight": 12,  # 2
        "golden": True,  # not counted
        "missing": None,
    }

    assert estimate_tokens(row) == 9  # ceil(36 / 4)


def test_rows_over_the_token_limit_are_problems_for_every_format() -> None:
    row = {"prompt": "p" * 400, "completions": ["c" * 100], "labels": [True]}

    assert check_row("stepwise", row, ExportOptions(max_tokens=200)) == []
    assert check_row("stepwise", row, ExportOptions(max_tokens=100)) == [
        "stepwise: about 125 tokens, over the limit of 100"
    ]
