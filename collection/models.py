"""Tasks, executions (trajectories) and training examples: the system of record.

Names mirror the seed's `TaskDefinition`, `TaskExecution`, `AgentAction`, `TrainingExample`,
`TaskStatus` and `AgentRole`; the Pydantic records in `collection.schema` are the edge types.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from datetime import timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import IntegrityError, models, transaction
from django.db.models import Max
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone


class Difficulty(models.TextChoices):
    EASY = "easy"
    MEDIUM = "medium"
    HARD = "hard"
    EXPERT = "expert"


class Category(models.TextChoices):
    """Categories the template library ships; users may add their own slugs."""

    CODE_REVIEW = "code_review", "Code review"
    DEBUGGING = "debugging"
    REFACTORING = "refactoring"
    IMPLEMENTATION = "implementation"
    TESTING = "testing"
    MULTI_AGENT = "multi_agent", "Multi-agent"
    IMPORTED = "imported"


# The categories the template library covers (the seed's six).
TEMPLATE_CATEGORIES = tuple(c.value for c in Category if c != Category.IMPORTED)


class TaskStatus(models.TextChoices):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AgentRole(models.TextChoices):
    COORDINATOR = "coordinator"
    SPECIALIST = "specialist"
    REVIEWER = "reviewer"
    EXECUTOR = "executor"


class Source(models.TextChoices):
    SCRIPTED = "scripted", "Scripted model"
    CLAUDE = "claude", "Claude"
    IMPORTED = "imported"


def _json_list() -> list:
    return []


def _json_dict() -> dict:
    return {}


# Kept as a string too: pydantic schemas validate against the same pattern.
SLUG_PATTERN = r"^[a-z][a-z0-9_]*$"
slug_validator = RegexValidator(SLUG_PATTERN, "Use lowercase letters, digits and _.")


class Task(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=64, validators=[slug_validator], db_index=True)
    difficulty = models.CharField(
        max_length=16, choices=Difficulty.choices, default=Difficulty.MEDIUM, db_index=True
    )
    required_tools = models.JSONField(default=_json_list, blank=True)
    expected_outcomes = models.JSONField(default=_json_list, blank=True)
    constraints = models.JSONField(default=_json_list, blank=True)
    metadata = models.JSONField(default=_json_dict, blank=True)
    source_template = models.CharField(max_length=200, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["category", "difficulty"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.category}, {self.difficulty})"


# An execution's token counts, named once (as the API's `usage` names them).
TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


class Execution(models.Model):
    """One agent session: its status, metrics and (through related rows) its trajectory."""

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="executions")
    session_id = models.CharField(max_length=100, blank=True, db_index=True)
    agent_id = models.CharField(max_length=100, blank=True)
    # What makes importing a session idempotent (`SessionFeed.key`): re-importing its file is
    # an indexed lookup. Blank for sessions no importer stored.
    import_key = models.CharField(max_length=255, blank=True, db_index=True)
    status = models.CharField(
        max_length=16, choices=TaskStatus.choices, default=TaskStatus.PENDING, db_index=True
    )
    # True while (or because) the trajectory may be missing its tail: crash, kill, timeout.
    is_partial = models.BooleanField(default=False)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.CLAUDE)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)
    api_duration_ms = models.PositiveBigIntegerField(null=True, blank=True)
    num_turns = models.PositiveIntegerField(default=0)
    cost_usd = models.FloatField(default=0.0)
    cost_estimated = models.BooleanField(default=False)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cache_creation_input_tokens = models.PositiveBigIntegerField(default=0)
    cache_read_input_tokens = models.PositiveBigIntegerField(default=0)
    usage = models.JSONField(default=_json_dict, blank=True)
    model = models.CharField(max_length=100, blank=True, db_index=True)
    outcome = models.TextField(blank=True)
    success = models.BooleanField(null=True, blank=True)
    error = models.TextField(blank=True)
    performance_metrics = models.JSONField(default=_json_dict, blank=True)
    metadata = models.JSONField(default=_json_dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # The example list sorts and filters by these (collection.queries.SORTS).
        indexes = [
            models.Index(fields=["cost_usd"], name="execution_cost_idx"),
            models.Index(fields=["num_turns"], name="execution_turns_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.task.name} [{self.status}] {self.session_id or self.pk}"

    @property
    def total_tokens(self) -> int:
        return sum(getattr(self, name) for name in TOKEN_FIELDS)

    @property
    def verdict(self) -> str:
        """How the session ended, in a few words: passed, the verifier said no, or its status."""
        if self.success:
            return "passed"
        if self.status == TaskStatus.COMPLETED and self.success is False:
            return "verifier failed"
        return str(self.get_status_display()).lower()

    @property
    def failure_line(self) -> str:
        """Why it did not pass, in one line: its error, else the verifier's last line."""
        if self.success:
            return ""
        if self.error:
            return self.error.splitlines()[0]
        output = str((self.performance_metrics.get("verifier") or {}).get("output", ""))
        lines = [line for line in output.splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""

    def append_message(
        self, payload: dict[str, Any], *, uuid: str = "", step: str = ""
    ) -> tuple[Message, bool]:
        """Store one message at the end of the trajectory, once.

        Idempotent on `uuid` (or, for messages without one, on a hash of the payload), so a
        redelivered or re-imported message is not stored twice. Returns (message, created).
        """
        key = uuid or payload.get("uuid") or _content_key(payload)
        existing = self.messages.filter(uuid=key).first()
        if existing:
            return existing, False
        try:
            with transaction.atomic():
                seq = (self.messages.aggregate(m=Max("seq"))["m"] or 0) + 1
                message = self.messages.create(
                    seq=seq,
                    uuid=key,
                    type=str(payload.get("type", "")),
                    subtype=str(payload.get("subtype", "") or ""),
                    parent_tool_use_id=payload.get("parent_tool_use_id") or "",
                    step=step,
                    payload=payload,
                )
        except IntegrityError:
            return self.messages.get(uuid=key), False
        return message, True


def _content_key(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


class Message(models.Model):
    """One message of a trajectory, in arrival order, stored as the SDK (or transcript) gave it."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    uuid = models.CharField(max_length=100)
    type = models.CharField(max_length=32, db_index=True)
    subtype = models.CharField(max_length=64, blank=True)
    parent_tool_use_id = models.CharField(max_length=100, blank=True)
    # The conversation-chain step this message belongs to ("" outside chains).
    step = models.CharField(max_length=100, blank=True)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["execution", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "uuid"], name="message_unique_uuid"),
            models.UniqueConstraint(fields=["execution", "seq"], name="message_unique_seq"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.type}"


class ToolCall(models.Model):
    """A tool use paired with its result, for querying across trajectories."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="tool_calls")
    tool_use_id = models.CharField(max_length=100)
    name = models.CharField(max_length=100, db_index=True)
    input = models.JSONField(default=_json_dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    structured_result = models.JSONField(null=True, blank=True)
    is_error = models.BooleanField(null=True, blank=True)
    parent_tool_use_id = models.CharField(max_length=100, blank=True)
    agent_id = models.CharField(max_length=100, blank=True)
    requested_in = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    answered_in = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["execution", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "tool_use_id"], name="toolcall_unique_tool_use_id"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({'error' if self.is_error else 'ok'})"


class AgentAction(models.Model):
    """What an agent did in a (multi-agent) session, with its role and reasoning."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="actions")
    agent_id = models.CharField(max_length=100)
    role = models.CharField(max_length=16, choices=AgentRole.choices, default=AgentRole.EXECUTOR)
    action_type = models.CharField(max_length=64)
    tool_name = models.CharField(max_length=100, blank=True)
    content = models.JSONField(default=_json_dict, blank=True)
    reasoning = models.TextField(blank=True)
    confidence = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    tool_use_id = models.CharField(max_length=100, blank=True)
    timestamp = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["execution", "id"]

    def __str__(self) -> str:
        return f"{self.agent_id}/{self.role}: {self.action_type}"


class TrainingExample(models.Model):
    execution = models.OneToOneField(
        Execution, on_delete=models.CASCADE, related_name="training_example"
    )
    quality_score = models.FloatField(
        default=0.0, validators=[MinValueValidator(0), MaxValueValidator(1)], db_index=True
    )
    is_golden = models.BooleanField(default=False, db_index=True)
    tags = models.JSONField(default=_json_list, blank=True)
    annotations = models.JSONField(default=_json_dict, blank=True)
    validated = models.BooleanField(default=False, db_index=True)
    validator_notes = models.TextField(blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviewed_examples",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # sha256 of the task and what the trajectory says (`collection.duplicates`); "" when the
    # trajectory is empty. Examples sharing one are duplicates of the earliest of them.
    fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    # A reviewer's quality ruling: while set, it is the example's quality_score (rescoring keeps
    # it); `scored_quality` keeps what the scorer said, shown beside it.
    quality_override = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    quality_override_reason = models.TextField(blank=True)
    scored_quality = models.FloatField(null=True, blank=True)
    # The prompt and the assistant's text, for full-text search (`collection.search`).
    search_text = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Indexed with the id (example_updated_id_idx): the analytics snapshot refreshes from a
    # watermark on it.
    updated_at = models.DateTimeField(auto_now=True)
    # The task's category, kept by database triggers (collection.example_category), never set
    # here: the list filters and sorts on one index instead of joining execution and task.
    category = models.CharField(max_length=64, blank=True, default="", editable=False)

    class Meta:
        ordering = ["-quality_score", "-id"]
        indexes = [
            models.Index(fields=["is_golden", "quality_score"]),
            # The list's default order and its keyset pages (collection.queries).
            models.Index(fields=["quality_score", "id"], name="example_quality_id_idx"),
            models.Index(fields=["created_at"], name="example_created_idx"),
            # A category filter in the list's default order.
            models.Index(
                fields=["category", "quality_score", "id"], name="example_category_quality_idx"
            ),
            # The analytics snapshot's window of recent changes, read from the index alone.
            models.Index(fields=["updated_at", "id"], name="example_updated_id_idx"),
            # The review queue's progress: the reviewed examples, counted from their own index.
            models.Index(
                fields=["reviewed_at"],
                condition=models.Q(reviewed_at__isnull=False),
                name="example_reviewed_idx",
            ),
        ]
        permissions = [("review_trainingexample", "Can review training examples")]

    def __str__(self) -> str:
        return f"Example {self.pk} ({self.quality_score:.2f})"

    def get_absolute_url(self) -> str:
        return reverse("collection-example-detail", args=[self.pk])


class ReviewEvent(models.Model):
    """One change made to an example by a person: which field, before -> after, who, when and
    through what (the example page, the queue, a bulk action on the list, the admin)."""

    example = models.ForeignKey(
        TrainingExample, on_delete=models.CASCADE, related_name="review_events"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    field = models.CharField(max_length=32)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    via = models.CharField(max_length=16, default="page")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["example", "-at"])]

    def __str__(self) -> str:
        return f"{self.field}: {self.before!r} -> {self.after!r}"


class StepMark(models.Model):
    """A reviewer's "bad step": an assistant message of the example's trajectory that exports
    train with loss weight 0."""

    example = models.ForeignKey(
        TrainingExample, on_delete=models.CASCADE, related_name="step_marks"
    )
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="step_marks")
    comment = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["message__seq"]
        constraints = [
            models.UniqueConstraint(fields=["example", "message"], name="one_mark_per_step")
        ]

    def __str__(self) -> str:
        return f"bad step {self.message_id} of example {self.example_id}"


class JobKind(models.TextChoices):
    SESSION = "session"
    CHAIN = "chain"
    MULTI_AGENT = "multi_agent", "Multi-agent session"


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class IllegalTransition(Exception):
    """A job was asked to move to a state it can't reach from the one it is in now."""


class BackgroundJob(models.Model):
    """What every background job shares: a status that moves only through guarded transitions.

    Each transition is one conditional UPDATE on the row as it is now, so two processes racing
    for the same job can't both win; the loser gets `IllegalTransition`. Views, templates and
    the admin ask `is_active` / `is_finished`, never compare status strings.
    """

    # transition name -> (the states it may start from, the state it ends in)
    TRANSITIONS: ClassVar[dict[str, tuple[tuple[str, ...], str]]] = {
        "acquire": ((JobStatus.QUEUED,), JobStatus.RUNNING),
        "finish": ((JobStatus.RUNNING,), JobStatus.SUCCEEDED),
        "fail": (ACTIVE_STATUSES, JobStatus.FAILED),
        "cancel": (ACTIVE_STATUSES, JobStatus.CANCELLED),
        "requeue": ((JobStatus.FAILED, JobStatus.CANCELLED), JobStatus.QUEUED),
    }
    # The Dramatiq actor that runs this kind of job (declared in collection.jobs.actors); jobs
    # are sent by name so that services never import their actors.
    queue_name: ClassVar[str] = ""
    actor_name: ClassVar[str] = ""

    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def can(self, transition: str) -> bool:
        """Whether `transition` may start from the state the job is in (as last read)."""
        return self.status in self.TRANSITIONS[transition][0]

    # --- transitions ---------------------------------------------------------------------------

    def queue(self) -> None:
        """Send the job to its worker once the surrounding transaction commits."""
        if self.status != JobStatus.QUEUED:
            raise IllegalTransition(f"{self._label()}: cannot queue when {self.status}")
        from trainingdash.broker import send

        pk, queue_name, actor_name = self.pk, self.queue_name, self.actor_name
        transaction.on_commit(lambda: send(queue_name, actor_name, pk))

    def acquire(self, **fields: Any) -> None:
        self._move("acquire", models.Q(cancel_requested=False), started_at=timezone.now(), **fields)

    def finish(self, **fields: Any) -> None:
        self._move("finish", error="", **fields)

    def fail(self, error: str, **fields: Any) -> None:
        self._move("fail", error=error[:4000], **fields)

    def cancel(self, reason: str = "cancelled by a user", **fields: Any) -> None:
        self._move("cancel", error=reason, cancel_requested=True, **fields)

    def requeue(self, **fields: Any) -> None:
        """Queue a finished job again (the caller decides what its rerun keeps)."""
        self._move("requeue", cancel_requested=False, error="", finished_at=None, **fields)
        self.queue()

    def request_cancel(self) -> None:
        """Stop the job: a queued one is cancelled now, a running one by its worker at its next
        check (it sees `cancel_requested`). Decided on the row as it is now."""
        try:
            queued = (JobStatus.QUEUED,)
            self._move(
                "cancel", only_from=queued, cancel_requested=True, error="cancelled by a user"
            )
            return
        except IllegalTransition:
            pass  # not queued (any more): ask a running job to stop
        stopping = type(self)._default_manager.filter(pk=self.pk, status=JobStatus.RUNNING)
        asked = stopping.update(cancel_requested=True)
        self.refresh_from_db()
        if not asked and not self.is_finished:
            raise IllegalTransition(f"{self._label()}: cannot cancel when {self.status}")

    def _move(
        self,
        name: str,
        *conditions: models.Q,
        only_from: tuple[str, ...] | None = None,
        **fields: Any,
    ) -> None:
        sources, target = self.TRANSITIONS[name]
        if only_from is not None:
            sources = tuple(s for s in sources if s in only_from)
        if target in FINISHED_STATUSES:
            fields.setdefault("finished_at", timezone.now())
        rows = type(self)._default_manager.filter(*conditions, pk=self.pk, status__in=sources)
        if not rows.update(status=target, **fields):
            self.refresh_from_db()
            raise IllegalTransition(f"{self._label()}: cannot {name} when {self.status}")
        # Only what the UPDATE wrote: related objects already loaded (task) stay loaded.
        self.refresh_from_db(fields=["status", *fields])

    def _label(self) -> str:
        return f"{self._meta.verbose_name} {self.pk}"


def lapsed_lease() -> models.Q:
    """Running jobs whose worker stopped renewing its lease (died, or lost the database)."""
    return models.Q(lease_expires_at__lt=timezone.now())


class LeasedJob(BackgroundJob):
    """A background job a worker runs under a lease (owner + expiry, renewed while running), so
    that a redelivered queue message never runs it twice at once; a job whose lease lapsed (its
    worker died) is taken over by the next delivery, or put back in the queue (`release`) by
    the reconciler (`collection.jobs.reconciler`)."""

    attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    TRANSITIONS = {
        **BackgroundJob.TRANSITIONS,
        # Running, too: a job whose lease lapsed (its worker died) is taken over.
        "acquire": (ACTIVE_STATUSES, JobStatus.RUNNING),
        # A running job whose lease lapsed goes back to the queue, for the next attempt.
        "release": ((JobStatus.RUNNING,), JobStatus.QUEUED),
    }

    class Meta(BackgroundJob.Meta):
        abstract = True

    @property
    def lease_lapsed(self) -> bool:
        """Running without a live lease (as last read): its worker is gone."""
        expires = self.lease_expires_at
        return self.status == JobStatus.RUNNING and expires is not None and expires < timezone.now()

    def acquire(self, owner: str = "", **fields: Any) -> None:
        """Take the job under a lease: queued, or running under a lease that lapsed (its worker
        died). Raises `IllegalTransition` when it is not ours to run."""
        now = timezone.now()
        self._move(
            "acquire",
            models.Q(status=JobStatus.QUEUED) | lapsed_lease(),
            models.Q(cancel_requested=False),
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds()),
            attempts=models.F("attempts") + 1,
            started_at=Coalesce("started_at", models.Value(now)),
            **fields,
        )

    def requeue(self, **fields: Any) -> None:
        """As for any job, its attempts counted afresh: a rerun someone asked for is not a
        worker dying under it."""
        super().requeue(attempts=0, **fields)

    def release(self, **fields: Any) -> None:
        """Queue again a running job whose lease lapsed (its worker died) and send it: its next
        attempt is counted and starts afresh (a collection job empties its execution). Raises
        `IllegalTransition` while the lease is live or once a cancel was requested."""
        self._move(
            "release",
            lapsed_lease(),
            models.Q(cancel_requested=False),
            lease_owner="",
            lease_expires_at=None,
            **fields,
        )
        self.queue()

    def revive(self) -> str:
        """Move on a running job whose lease lapsed (its worker is gone): cancelled when a
        cancel was asked, failed once it has used up `max_attempts()`, else queued again
        (`release`). What happened ("cancelled", "failed", "requeued"), or "" when its lease
        is live (or another process moved it first)."""
        if not self.lease_lapsed:
            return ""
        try:
            if self.cancel_requested:
                self.abandon("cancelled by a user", cancel=True)
                return "cancelled"
            if self.attempts >= max_attempts():
                self.abandon(gave_up(self.attempts))
                return "failed"
            self.release()
        except IllegalTransition:
            return ""
        return "requeued"

    def abandon(self, reason: str, *, cancel: bool = False) -> None:
        """End a running job whose lease lapsed (its worker is gone) without running it again:
        failed with `reason`, or cancelled when `cancel`. Raises `IllegalTransition` while the
        lease is live. (Its owner, if any, cleans up: a collection job's open execution.)"""
        name = "cancel" if cancel else "fail"
        self._move(
            name,
            lapsed_lease(),
            only_from=(JobStatus.RUNNING,),
            error=reason[:4000],
            lease_expires_at=None,
        )

    # The ends, as for any job; a worker passes `owner` so that a job another worker took over
    # meanwhile (this one lost its lease) is left to its new owner.

    def finish(self, *, owner: str | None = None, **fields: Any) -> None:
        self._move("finish", *_held_by(owner), error="", lease_expires_at=None, **fields)

    def fail(self, error: str, *, owner: str | None = None, **fields: Any) -> None:
        self._move("fail", *_held_by(owner), error=error[:4000], lease_expires_at=None, **fields)

    def cancel(
        self, reason: str = "cancelled by a user", *, owner: str | None = None, **fields: Any
    ) -> None:
        self._move(
            "cancel",
            *_held_by(owner),
            error=reason,
            cancel_requested=True,
            lease_expires_at=None,
            **fields,
        )


def _held_by(owner: str | None) -> list[models.Q]:
    return [] if owner is None else [models.Q(lease_owner=owner)]


class CollectionJob(LeasedJob):
    """A request to collect one session, chain or multi-agent session, run by a worker under a
    lease (`LeasedJob`). `spec` holds what to run (prompt, tools, limits, backend; see
    `collection.jobs.JobSpec`)."""

    kind = models.CharField(max_length=16, choices=JobKind.choices, default=JobKind.SESSION)
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="jobs")
    spec = models.JSONField(default=_json_dict)
    progress = models.JSONField(default=_json_dict, blank=True)
    execution = models.OneToOneField(
        Execution, null=True, blank=True, on_delete=models.SET_NULL, related_name="job"
    )
    batch = models.ForeignKey(
        "GenerationBatch", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    # Within a batch, what this job is in the plan (template, seed, kind): resuming a batch
    # creates only the planned jobs that don't exist yet.
    plan_key = models.CharField(max_length=200, blank=True)

    queue_name = "collection"
    actor_name = "run_collection_job"

    class Meta(LeasedJob.Meta):
        abstract = False
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "plan_key"],
                condition=models.Q(batch__isnull=False),
                name="job_unique_plan_key_per_batch",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} [{self.status}]"

    def queue(self) -> None:
        """Send the job on commit, marked as sent (`progress[SENT_AT]`) until a worker takes it:
        the reconciler sends again a job whose message the broker lost, and a batch counts it
        in flight."""
        super().queue()
        sent = {SENT_AT: timezone.now().isoformat()}
        CollectionJob.objects.filter(pk=self.pk, status=JobStatus.QUEUED).update(progress=sent)
        self.progress = sent

    def requeue(self, **fields: Any) -> None:
        """Run the job again with a fresh execution; the earlier attempt's execution (and its
        example) is kept as it was, no longer linked to the job."""
        super().requeue(execution=None, progress={}, **fields)


# The mark of a queued collection job whose message was sent (an ISO time in its `progress`,
# which its worker replaces with its own once it runs).
SENT_AT = "sent_at"


def lease_seconds() -> int:
    """How long a worker's claim on a running job lasts without renewal."""
    return int(getattr(settings, "COLLECTION_LEASE_SECONDS", 60))


def max_attempts() -> int:
    """How many times a job is started before a worker dying under it fails it."""
    return int(settings.COLLECTION_MAX_ATTEMPTS)


def gave_up(attempts: int) -> str:
    return (
        f"gave up after {attempts} attempts: each time, its worker stopped before the end "
        "(killed, out of memory, or cut off from the database)"
    )


class GenerationBatch(BackgroundJob):
    """A batch of generated sessions: its parameters, and whether it should keep going.

    Its status follows its jobs (`collection.jobs.batches.refresh_status`); it has no actor of
    its own. Resuming requeues it from any finished state.
    """

    TRANSITIONS = {
        **BackgroundJob.TRANSITIONS,
        "requeue": (FINISHED_STATUSES, JobStatus.QUEUED),
    }

    name = models.CharField(max_length=200)
    params = models.JSONField(default=_json_dict)

    class Meta(BackgroundJob.Meta):
        verbose_name_plural = "generation batches"

    def queue(self) -> None:
        """Batches are not sent anywhere: their jobs are."""

    def __str__(self) -> str:
        return f"{self.name} [{self.status}]"


class ImportUpload(LeasedJob):
    """Transcripts uploaded in the browser, imported by a worker; the report is kept.

    Imported under a lease (`LeasedJob`) that the worker's actor renews while the import runs:
    an upload whose worker died is imported again by the reconciler (what its first attempt
    imported is known and not stored twice), and failed once it has used up
    `COLLECTION_MAX_ATTEMPTS`. Its import (`collection.jobs.uploads`) names no lease owner:
    the worker thread that runs it is the owner.
    """

    file_name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField(default=0)
    # Where the upload was unpacked (under DATA_DIR/uploads); removed after the import.
    path = models.CharField(max_length=500)
    report = models.JSONField(default=_json_dict, blank=True)

    queue_name = "imports"
    actor_name = "import_upload"

    class Meta(LeasedJob.Meta):
        abstract = False

    def __str__(self) -> str:
        return f"{self.file_name} [{self.status}]"

    def acquire(self, owner: str = "", **fields: Any) -> None:
        super().acquire(owner or this_thread(), **fields)


def this_thread() -> str:
    """This process's thread as a lease owner: "host:pid:thread"."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class ImportWatchFile(models.Model):
    """A file under a watched folder and how much of it is imported (`import_sessions --watch`).

    `offset` is the end of the last complete line imported, `size` the file's size then; a file
    whose inode changed or that shrank below `offset` was rotated or replaced and is read again
    from the start. `resume` is the importer's checkpoint at `offset` (see
    `Importer.resume`): a file that grew is read from there, not again from its start.
    """

    root = models.CharField(max_length=1000, help_text="the watched folder the file is under")
    path = models.CharField(max_length=1000, unique=True)
    inode = models.PositiveBigIntegerField(default=0)
    offset = models.PositiveBigIntegerField(default=0)
    size = models.PositiveBigIntegerField(default=0)
    mtime = models.DateTimeField(null=True, blank=True)
    # The last import's outcome in a few words ("updated · 3 message(s)", an error), for the page.
    note = models.CharField(max_length=500, blank=True)
    resume = models.JSONField(default=dict, blank=True)
    # Read while being written: its session is closed (scored, an example made) once the file
    # has been quiet for a while (`watch.QUIET_SECONDS`), not at every scan that reads it.
    running = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["root", "-updated_at"], name="importwatch_root_updated")]

    def __str__(self) -> str:
        return f"{self.path} @ {self.offset}"
