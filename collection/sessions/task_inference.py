"""The task an imported session is filed under, inferred from its first user prompt."""

from __future__ import annotations

import re
from typing import Any

from collection.models import Category, Difficulty, Task

TASK_NAME_LENGTH = 80
DESCRIPTION_LENGTH = 10_000
# Marks the tasks importers made up (category `imported`, editable later like any task).
TASK_MARK = "importer"
_COMMAND = re.compile(r"<command-name>\s*/?([^<]*?)\s*</command-name>")
_ARGS = re.compile(r"<command-args>(.*?)</command-args>", re.S)


def first_prompt(payload: dict[str, Any]) -> str:
    """The user's own words in a user payload, or "" (tool results, CLI-generated turns)."""
    if payload.get("type") != "user" or payload.get("parent_tool_use_id"):
        return ""
    if payload.get("isMeta") or payload.get("isCompactSummary"):
        return ""
    message = payload.get("message")
    for text in _texts(message.get("content") if isinstance(message, dict) else None):
        prompt = _prompt_in(text.strip())
        if prompt:
            return prompt
    return ""


def _prompt_in(text: str) -> str:
    if text.startswith("[Request interrupted"):
        return ""
    if not text.startswith("<"):
        return text
    # A slash command with arguments is a prompt ("/review the auth module"); other
    # CLI-generated turns (command output, caveats, reminders) start with a tag too.
    command, args = _COMMAND.search(text), _ARGS.search(text)
    if command and args and args.group(1).strip():
        return f"/{command.group(1)} {args.group(1).strip()}"
    return ""


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    return [
        block["text"]
        for block in content
        if isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    ]


def task_for(
    prompt: str, *, name: str, importer: str, fallback: str, created_by: str = TASK_MARK
) -> Task:
    """The imported task for this prompt (shared by sessions that start the same way)."""
    title = _shorten(name or prompt) or fallback
    task = Task.objects.filter(name=title, category=Category.IMPORTED).order_by("id").first()
    return task or Task.objects.create(
        name=title,
        description=prompt[:DESCRIPTION_LENGTH],
        category=Category.IMPORTED,
        difficulty=Difficulty.MEDIUM,
        metadata={"created_by": created_by, "importer": importer},
    )


def _shorten(text: str) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= TASK_NAME_LENGTH else flat[: TASK_NAME_LENGTH - 1] + "…"
