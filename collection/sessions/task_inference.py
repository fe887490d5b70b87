"""The task an imported session is filed under: named after its first user prompt, then
categorised from what the session did (`collection.importers.categorise`)."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Q

from collection.models import Category, Difficulty, Task

TASK_NAME_LENGTH = 80
DESCRIPTION_LENGTH = 10_000
# Marks the tasks importers made up (category `imported` until categorised; editable later).
TASK_MARK = "importer"
# The (category, difficulty) the rule last gave a task, in its metadata: while the task still
# has them, nobody chose otherwise and a later import may recategorise it.
CATEGORISED = "categorised"
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
    made_up = Q(category=Category.IMPORTED) | Q(metadata__has_key=CATEGORISED)
    task = Task.objects.filter(made_up, name=title).order_by("id").first()
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


def categorise_task(task: Task, category: str, difficulty: str) -> bool:
    """File a made-up task under what its session did, unless a person chose otherwise (on the
    task's edit page): only a task still `imported`, or still as the rule left it, changes."""
    auto = task.metadata.get(CATEGORISED)
    untouched = task.category == Category.IMPORTED or auto == [task.category, task.difficulty]
    if not untouched or task.metadata.get("created_by") is None:
        return False
    task.category, task.difficulty = category, difficulty
    task.metadata = task.metadata | {CATEGORISED: [category, difficulty]}
    task.save(update_fields=["category", "difficulty", "metadata"])
    return True
