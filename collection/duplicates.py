"""Duplicate trajectories: the same task and the same conversation, collected more than once.

An execution's fingerprint is the sha256 of its task id, its prompt and what its trajectory
says, in order: user prompts, assistant text, tool calls (name and input) and tool results
(content and error flag). What differs between two recordings of one conversation is left out:
uuids, message and tool-use ids, timestamps, session ids, usage and cost, thinking (and its
signatures), system and result messages. How a response was split into messages doesn't
matter either: blocks are read as one sequence.

    example = mark_duplicates(example)   # lifecycle.finish, once the example is scored
    example.duplicate_of                 # the earliest example with the same fingerprint

An empty trajectory has no fingerprint ("") and is nobody's duplicate. Each call relabels the
whole group of its fingerprint, so a group left half-marked (two identical sessions finishing
at once, or an original deleted) is put right by the next call on any of its members.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import transaction
from django.utils import timezone

from collection.models import Execution, TrainingExample

CONVERSATION_TYPES = ("user", "assistant")
SKIPPED_BLOCKS = {"thinking", "redacted_thinking"}
# Keys of other block kinds (images, server tools, ...) that name a recording, not content.
VOLATILE_KEYS = {"id", "tool_use_id", "signature", "cache_control"}


def fingerprint(execution: Execution) -> str:
    """The execution's fingerprint, or "" when its trajectory has nothing to compare."""
    payloads = (
        execution.messages.filter(type__in=CONVERSATION_TYPES)
        .order_by("seq")
        .values_list("payload", flat=True)
    )
    prompt = execution.metadata.get("prompt") or ""
    return fingerprint_of(execution.task_id, prompt, payloads.iterator())


def fingerprint_of(task_id: int, prompt: str, payloads: Iterable[dict[str, Any]]) -> str:
    """The fingerprint of a conversation: the sha256 of `[task_id, prompt, [item, ...]]` as
    JSON, hashed an item at a time (a long session is never held as one string)."""
    digest = hashlib.sha256()
    separator = json.dumps([task_id, prompt], sort_keys=True, default=str)[:-1] + ", ["
    for item in conversation(payloads):
        digest.update(separator.encode())
        digest.update(json.dumps(item, sort_keys=True, default=str).encode())
        separator = ", "
    if separator != ", ":
        return ""  # nothing to compare
    digest.update(b"]]")
    return digest.hexdigest()


def conversation(payloads: Iterable[dict[str, Any]]) -> Iterator[list[Any]]:
    """What the messages say, one item per block: [role, kind, content...]."""
    for payload in payloads:
        role = payload.get("type")
        if role not in CONVERSATION_TYPES:
            continue
        content = (payload.get("message") or {}).get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks or []:
            item = _block(block)
            if item is not None:
                yield [role, *item]


def _block(block: Any) -> list[Any] | None:
    if not isinstance(block, dict):
        return ["other", block]
    kind = block.get("type")
    if kind in SKIPPED_BLOCKS:
        return None
    if kind == "text":
        return ["text", block.get("text") or ""]
    if kind == "tool_use":
        return ["tool_use", block.get("name") or "", block.get("input") or {}]
    if kind == "tool_result":
        return ["tool_result", _result(block.get("content")), bool(block.get("is_error"))]
    return [str(kind), {k: v for k, v in block.items() if k not in VOLATILE_KEYS}]


def _result(content: Any) -> Any:
    if isinstance(content, list):
        return [_block(b) for b in content]
    return content


def mark_duplicates(example: TrainingExample) -> TrainingExample:
    """Store the example's fingerprint and mark it (and its group) `duplicate_of` the earliest
    example sharing it. Returns the example as stored."""
    before = TrainingExample.objects.filter(pk=example.pk).values_list("fingerprint", flat=True)
    old = before.first() or ""
    new = fingerprint(example.execution)
    with transaction.atomic():
        TrainingExample.objects.filter(pk=example.pk).update(
            fingerprint=new, duplicate_of=None, updated_at=timezone.now()
        )
        for shared in {old, new} - {""}:
            regroup(shared)
    example.refresh_from_db(fields=["fingerprint", "duplicate_of"])
    return example


def regroup(shared: str) -> None:
    """Point every example with this fingerprint at the earliest of them (lowest id)."""
    regroup_many({shared})


def regroup_many(fingerprints: Iterable[str]) -> None:
    """`regroup` for several fingerprints: one query finds the groups that need relabelling,
    then one UPDATE per such group (decided from the rows as they are then)."""
    wanted = sorted(set(fingerprints) - {""})
    if not wanted:
        return
    groups: dict[str, list[tuple[int, int | None]]] = {}
    rows = TrainingExample.objects.filter(fingerprint__in=wanted).order_by("pk")
    for pk, shared, duplicate_of in rows.values_list("pk", "fingerprint", "duplicate_of"):
        groups.setdefault(shared, []).append((pk, duplicate_of))
    # update() skips auto_now: updated_at is set here, for the analytics snapshot's watermark.
    now = timezone.now()
    for shared, members in groups.items():
        original = members[0][0]
        if members[0][1] is not None:
            TrainingExample.objects.filter(pk=original).update(duplicate_of=None, updated_at=now)
        if any(duplicate_of != original for _, duplicate_of in members[1:]):
            moved = TrainingExample.objects.filter(fingerprint=shared).exclude(pk=original)
            moved.exclude(duplicate_of=original).update(duplicate_of=original, updated_at=now)
