"""One tool call's card: its headline, its result preview, and what its input shows (a diff,
a file, a checklist). Used by the trajectory builder (previews) and by the "show all" view
(`full=True`)."""

from __future__ import annotations

import re
from typing import Any

from django.utils.safestring import SafeString

from collection.models import ToolCall
from collection.viewer.render import DiffLine, diff_lines, highlight, preview, result_text
from collection.viewer.tools import tool_view
from collection.viewer.tree import Todo, ToolCard

DIFF_ROWS = 120
FILE_LINES = 15
FILE_CHARS = 3000
EXIT_CODE = re.compile(r"^Exit code (\d+)")
EVERYTHING = {"lines": 10**9, "chars": 10**12}


def card_for(
    tool_use_id: str,
    name: str,
    tool_input: dict[str, Any],
    call: ToolCall | None,
    *,
    full: bool = False,
) -> ToolCard:
    """One tool call's card: previews by default, everything with `full`."""
    view = tool_view(name)
    card = ToolCard(
        call.pk if call else None,
        tool_use_id,
        name,
        view.card,
        view.key_arg(tool_input),
        tool_input,
    )
    if call is not None and (call.answered_in_id is not None or call.result is not None):
        text = result_text(call.result)
        card.answered, card.is_error = True, bool(call.is_error)
        card.answered_in = call.answered_in_id
        card.output = preview(text, **(EVERYTHING if full else {}))
        card.exit_status = _exit_status(card, text)
    _body(card, full=full)
    return card


def _exit_status(card: ToolCard, text: str) -> int | None:
    # Claude Code starts a failed command's result with "Exit code N"; success says nothing.
    if card.card != "bash":
        return None
    if not card.is_error:
        return 0
    found = EXIT_CODE.match(text)
    return int(found.group(1)) if found else None


def _body(card: ToolCard, *, full: bool) -> None:
    """What the card shows of its input: a diff, a file, a checklist."""
    if card.card == "edit":
        _diff(card, full=full)
    elif card.card == "write":
        _file(card, full=full)
    elif card.card == "todo":
        todos = card.tool_input.get("todos")
        items = [_dict(t) for t in todos] if isinstance(todos, list) else []
        card.todos = [Todo(str(t.get("content") or ""), str(t.get("status") or "")) for t in items]


def _diff(card: ToolCard, *, full: bool) -> None:
    given = card.tool_input
    edits = given.get("edits") if card.name == "MultiEdit" else [given]
    rows: list[DiffLine] = []
    for edit in [_dict(e) for e in edits] if isinstance(edits, list) else []:
        old, new = str(edit.get("old_string") or ""), str(edit.get("new_string") or "")
        if rows:
            rows.append(DiffLine("sep", SafeString("")))
        rows += diff_lines(old, new, str(given.get("file_path") or ""))
        if not full and len(rows) > DIFF_ROWS:
            break  # no need to diff what the preview won't show
    card.diff = rows if full else rows[:DIFF_ROWS]
    card.diff_cut = len(rows) > len(card.diff)


def _file(card: ToolCard, *, full: bool) -> None:
    content = str(card.tool_input.get("content") or "")
    head = content if full else preview(content, lines=FILE_LINES, chars=FILE_CHARS).text
    path = str(card.tool_input.get("file_path") or "")
    card.file_html, card.file_cut = highlight(head, filename=path), len(head) < len(content)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
