"""Reviewer decisions on training examples: the one service behind the example page, the review
queue, the list's bulk actions and the admin's. Every change it makes leaves a `ReviewEvent`
(who, when, field, before -> after, reason, via); a field that does not change leaves none.

A ruling (golden, validated, the whole review form, a quality override) sets `reviewer` and
`reviewed_at` in the same UPDATE; from then on rescoring leaves the golden flag alone, and a
quality override stays the example's `quality_score` (see `scoring.apply_score`). Tags and
step marks are notes, not rulings: they leave `reviewed_at` as it is.

Every function decides from the row as it is now (locked with `select_for_update`), not from
the copy the caller read earlier, so a rescore or another reviewer in between is not undone.

    review_example(example, user, is_golden=False, validated=True, validator_notes="", tags=[])
    override_quality(example, user, 0.3, "solved the wrong bug", via="page")
    mark_step(example, message, user, "ran the tests before saving", via="queue")
    set_golden(filter_examples(filters), user, True, via="bulk")   # 100,000 rows: a few queries
    add_tags(TrainingExample.objects.filter(pk__in=ids), user, ["flaky"], via="admin")
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from collection.models import Message, ReviewEvent, StepMark, TrainingExample

# Where a change was made, as ReviewEvent.via records it.
VIAS = ("page", "queue", "bulk", "admin")
# Rows per INSERT/UPDATE batch of a bulk change: bounded memory at 100,000 rows.
CHUNK = 1000
MAX_TAG_LENGTH = 50
FIELD_LABELS = {
    "is_golden": "golden",
    "validated": "validated",
    "validator_notes": "notes",
    "tags": "tags",
    "quality_override": "quality override",
    "quality_override_reason": "override reason",
    "bad_step": "bad step",
}

Examples = QuerySet[TrainingExample] | Iterable[int]
T = TypeVar("T")


class ReviewError(ValueError):
    """A review change that cannot be made as asked (a value out of range, an override without
    a reason, a step from another trajectory). Retrying won't help."""


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any
    reason: str = ""


# --- one example ------------------------------------------------------------------------------


def review_example(
    example: TrainingExample,
    reviewer: User,
    *,
    is_golden: bool,
    validated: bool,
    validator_notes: str,
    tags: list[str],
    quality_override: float | None = None,
    override_reason: str = "",
    via: str = "page",
) -> TrainingExample:
    """Record a reviewer's ruling on one example (the review form: every review field at once);
    returns the example with the ruling set. `quality_override=None` means no override."""
    _check_via(via)
    _check_override(quality_override, override_reason)
    wanted = {
        "is_golden": is_golden,
        "validated": validated,
        "validator_notes": validator_notes,
        "tags": _clean_tags(tags),
    }
    with transaction.atomic():
        current = _locked(example.pk)
        changes = [
            Change(name, getattr(current, name), value)
            for name, value in wanted.items()
            if getattr(current, name) != value
        ]
        override_changes, columns = _override(current, quality_override, override_reason)
        columns |= {c.field: c.after for c in changes}
        _write(example, reviewer, changes + override_changes, columns, via=via, ruling=True)
    return example


def override_quality(
    example: TrainingExample,
    reviewer: User,
    value: float | None,
    reason: str,
    *,
    via: str = "page",
) -> TrainingExample:
    """Set (or, with None, clear) a reviewer's quality score; a reason is required to set one.
    While set it is the example's `quality_score`; cleared, the scorer's score is back."""
    _check_via(via)
    _check_override(value, reason)
    with transaction.atomic():
        changes, columns = _override(_locked(example.pk), value, reason)
        _write(example, reviewer, changes, columns, via=via, ruling=True)
    return example


def mark_step(
    example: TrainingExample,
    message: Message,
    reviewer: User,
    comment: str = "",
    *,
    via: str = "page",
) -> StepMark:
    """Mark an assistant step of the example's trajectory bad (or change its comment)."""
    _check_via(via)
    _check_step(example, message)
    with transaction.atomic():
        _locked(example.pk)  # one writer of this example's marks at a time
        mark = StepMark.objects.filter(example=example, message=message).first()
        before = _mark_value(mark, message)
        if mark is None:
            mark = StepMark(example=example, message=message, created_by=reviewer)
        elif mark.comment == comment:
            return mark
        mark.comment = comment
        mark.save()
        change = Change("bad_step", before, _mark_value(mark, message))
        _write(example, reviewer, [change], {}, via=via, ruling=False)
    return mark


def unmark_step(
    example: TrainingExample, message: Message, reviewer: User, *, via: str = "page"
) -> bool:
    """Take a step's bad mark away; returns whether there was one."""
    _check_via(via)
    _check_step(example, message)
    with transaction.atomic():
        _locked(example.pk)
        mark = StepMark.objects.filter(example=example, message=message).first()
        if mark is None:
            return False
        change = Change("bad_step", _mark_value(mark, message), None)
        mark.delete()
        _write(example, reviewer, [change], {}, via=via, ruling=False)
    return True


def _locked(pk: int) -> TrainingExample:
    fields = ("is_golden", "validated", "validator_notes", "tags", "quality_score")
    more = ("quality_override", "quality_override_reason", "scored_quality")
    return TrainingExample.objects.select_for_update().only(*fields, *more).get(pk=pk)


def _override(
    current: TrainingExample, value: float | None, reason: str
) -> tuple[list[Change], dict[str, Any]]:
    """The changes and columns that set `current`'s override to `value` (None: clear it)."""
    reason = reason.strip() if value is not None else ""
    if value == current.quality_override:
        if reason == current.quality_override_reason:
            return [], {}
        before = current.quality_override_reason
        return [Change("quality_override_reason", before, reason)], {
            "quality_override_reason": reason
        }
    # The scorer's number, kept aside while the override stands (rows scored before overrides
    # existed only have it in quality_score).
    scored = current.scored_quality
    if scored is None and current.quality_override is None:
        scored = current.quality_score
    columns = {
        "quality_override": value,
        "quality_override_reason": reason,
        "scored_quality": scored,
        "quality_score": value if value is not None else scored,
    }
    if columns["quality_score"] is None:  # no score known at all: leave it as it is
        del columns["quality_score"]
    return [Change("quality_override", current.quality_override, value, reason)], columns


def _write(
    example: TrainingExample,
    reviewer: User,
    changes: list[Change],
    columns: dict[str, Any],
    *,
    via: str,
    ruling: bool,
) -> None:
    """One UPDATE of the review columns (never a save(): that would write back a stale
    quality_score) and one event per change; `example` gets the values written."""
    now = timezone.now()
    if ruling:
        columns = columns | {"reviewer": reviewer, "reviewed_at": now}
    TrainingExample.objects.filter(pk=example.pk).update(**columns, updated_at=now)
    for name, value in (columns | {"updated_at": now}).items():
        setattr(example, name, value)
    ReviewEvent.objects.bulk_create(
        _event(example.pk, reviewer, change, via=via, at=now) for change in changes
    )


def _event(pk: int, reviewer: User, change: Change, *, via: str, at: Any) -> ReviewEvent:
    return ReviewEvent(
        example_id=pk,
        user=reviewer,
        at=at,
        field=change.field,
        before=change.before,
        after=change.after,
        reason=change.reason,
        via=via,
    )


def _mark_value(mark: StepMark | None, message: Message) -> dict[str, Any] | None:
    if mark is None:
        return None
    return {"message": message.pk, "seq": message.seq, "comment": mark.comment}


# --- many examples ----------------------------------------------------------------------------


def set_golden(examples: Examples, reviewer: User, golden: bool, *, via: str = "bulk") -> int:
    """Rule many examples golden (or not); returns how many were ruled on.

    One SELECT, one UPDATE and the events in chunks, whatever the number of rows."""
    return _set_flag(examples, reviewer, "is_golden", golden, via=via)


def set_validated(examples: Examples, reviewer: User, validated: bool, *, via: str = "bulk") -> int:
    """Rule many examples validated (or not); returns how many were ruled on."""
    return _set_flag(examples, reviewer, "validated", validated, via=via)


def add_tags(examples: Examples, reviewer: User, tags: Iterable[str], *, via: str = "bulk") -> int:
    """Add tags to many examples; returns how many examples gained one."""
    added = set(_clean_tags(tags, required=True))
    return _edit_tags(examples, reviewer, lambda old: sorted(set(old) | added), via=via)


def remove_tags(
    examples: Examples, reviewer: User, tags: Iterable[str], *, via: str = "bulk"
) -> int:
    """Take tags off many examples; returns how many examples lost one."""
    removed = set(_clean_tags(tags, required=True))
    return _edit_tags(examples, reviewer, lambda old: [t for t in old if t not in removed], via=via)


def _selection(examples: Examples) -> QuerySet[TrainingExample]:
    """The chosen rows, as a bare queryset: a caller's QuerySet becomes a subquery (its joins,
    ordering and slicing stay inside it), so nothing is fetched to build it."""
    if isinstance(examples, QuerySet):
        return TrainingExample.objects.filter(pk__in=examples.values_list("pk", flat=True))
    return TrainingExample.objects.filter(pk__in=list(examples))


def _set_flag(examples: Examples, reviewer: User, field: str, value: bool, *, via: str) -> int:
    _check_via(via)
    rows = _selection(examples)
    with transaction.atomic():
        # Locked, so the events' "before" is what the UPDATE replaces.
        current = rows.order_by().select_for_update().values_list("pk", field)
        changed = [pk for pk, old in current if old != value]
        now = timezone.now()
        count = rows.update(**{field: value}, reviewer=reviewer, reviewed_at=now, updated_at=now)
        change = Change(field, not value, value)
        for chunk in _chunks(changed):
            ReviewEvent.objects.bulk_create(
                _event(pk, reviewer, change, via=via, at=now) for pk in chunk
            )
    return count


def _edit_tags(
    examples: Examples,
    reviewer: User,
    edit: Callable[[list[str]], list[str]],
    *,
    via: str,
) -> int:
    """Rows that end up with the same tags share an UPDATE (per chunk of ids): a handful of
    statements for a whole filtered result, where a CASE per row (bulk_update) grows
    quadratically on SQLite."""
    _check_via(via)
    with transaction.atomic():
        current = _selection(examples).order_by().select_for_update().values_list("pk", "tags")
        changed = [(pk, old, edit(old)) for pk, old in current if set(edit(old)) != set(old)]
        now = timezone.now()
        by_result: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for pk, _old, new in changed:
            by_result[tuple(new)].append(pk)
        for tags, pks in by_result.items():
            for chunk in _chunks(pks):
                rows = TrainingExample.objects.filter(pk__in=chunk)
                rows.update(tags=list(tags), updated_at=now)
        for events in _chunks(changed):
            ReviewEvent.objects.bulk_create(
                _event(pk, reviewer, Change("tags", old, new), via=via, at=now)
                for pk, old, new in events
            )
    return len(changed)


def _chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    return (items[i : i + CHUNK] for i in range(0, len(items), CHUNK))


# --- checks -----------------------------------------------------------------------------------


def _check_via(via: str) -> None:
    if via not in VIAS:
        raise ReviewError(f"unknown via {via!r}; one of {', '.join(VIAS)}")


def _check_override(value: float | None, reason: str) -> None:
    if value is None:
        return
    if not 0.0 <= value <= 1.0:
        raise ReviewError(f"a quality override is a score from 0 to 1, not {value}")
    if not reason.strip():
        raise ReviewError("a quality override needs a reason")


def _check_step(example: TrainingExample, message: Message) -> None:
    if message.execution_id != example.execution_id or message.type != "assistant":
        raise ReviewError(
            f"message {message.pk} is not an assistant step of example {example.pk}'s trajectory"
        )


def _clean_tags(tags: Iterable[str], *, required: bool = False) -> list[str]:
    clean = sorted({t.strip() for t in tags if t.strip()})
    if required and not clean:
        raise ReviewError("name at least one tag")
    too_long = [t for t in clean if len(t) > MAX_TAG_LENGTH]
    if too_long:
        raise ReviewError(f"tag {too_long[0][:20]!r}… is longer than {MAX_TAG_LENGTH} characters")
    return clean


# --- history ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryLine:
    """A ReviewEvent as the example's history shows it."""

    event: ReviewEvent
    label: str
    before: str
    after: str


def history(example: TrainingExample, limit: int = 50) -> list[HistoryLine]:
    """The example's latest review changes, newest first (one query)."""
    events = example.review_events.select_related("user")[:limit]
    return [
        HistoryLine(e, FIELD_LABELS.get(e.field, e.field), describe(e.before), describe(e.after))
        for e in events
    ]


def describe(value: Any) -> str:
    """A recorded value in a few words: yes/no, a score, a tag list, a step and its comment."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "no tags"
    if isinstance(value, dict):
        comment = value.get("comment") or ""
        return f"step #{value.get('seq')}" + (f": {comment}" if comment else "")
    return str(value) or "(empty)"
