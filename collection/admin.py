"""The Django admin: big tables stay fast (every shown foreign key joined, no full counts, big
JSON columns left out of lists), and review actions go through `collection.review`, so they
leave the same ReviewEvents as the example page."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from collection import review
from collection.jobs.runner import revive, stop_job
from collection.models import (
    AgentAction,
    CollectionJob,
    Execution,
    GenerationBatch,
    IllegalTransition,
    ImportUpload,
    JobStatus,
    Message,
    ReviewEvent,
    StepMark,
    Task,
    ToolCall,
    TrainingExample,
)
from collection.roles import REVIEW, signed_in_user

# A reviewer's columns: changed only through collection.review (the page, the queue, the
# actions below), which records each change.
REVIEW_FIELDS = (
    "is_golden",
    "validated",
    "validator_notes",
    "tags",
    "quality_score",
    "quality_override",
    "quality_override_reason",
    "scored_quality",
    "reviewer",
    "reviewed_at",
)
# What a change list never shows: the big JSON and text columns.
EXECUTION_BLOBS = ("usage", "performance_metrics", "metadata", "outcome", "error")
TASK_BLOBS = ("description", "required_tools", "expected_outcomes", "constraints", "metadata")


class BigTableAdmin(admin.ModelAdmin):
    """A change list for a table of 100,000s of rows: no unfiltered count, and `list_defer`
    columns left out of the list's query (the change form still loads every column)."""

    show_full_result_count = False
    list_defer: tuple[str, ...] = ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request)
        match = request.resolver_match
        if self.list_defer and match and match.url_name and match.url_name.endswith("changelist"):
            qs = qs.defer(*self.list_defer)
        return qs


class TaskCategoryFilter(admin.SimpleListFilter):
    """Categories from the (indexed, small) task table, not a DISTINCT over every row listed."""

    title = "category"
    parameter_name = "category"
    path = "task__category"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        found = Task.objects.order_by("category").values_list("category", flat=True).distinct()
        return [(c, c) for c in found]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(**{self.path: self.value()}) if self.value() else queryset


class ExampleCategoryFilter(TaskCategoryFilter):
    path = "category"  # the example's copy of its task's category, indexed


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["name", "category", "difficulty", "source_template", "created_at"]
    list_filter = ["category", "difficulty"]
    search_fields = ["name", "description", "source_template"]


class TrainingExampleInline(admin.StackedInline):
    model = TrainingExample
    extra = 0
    raw_id_fields = ["duplicate_of"]
    readonly_fields = REVIEW_FIELDS


@admin.register(Execution)
class ExecutionAdmin(BigTableAdmin):
    list_display = [
        "id",
        "task",
        "status",
        "is_partial",
        "success",
        "source",
        "model",
        "num_turns",
        "cost_usd",
        "duration_ms",
        "created_at",
    ]
    list_select_related = ["task"]
    list_defer = (*EXECUTION_BLOBS, *(f"task__{name}" for name in TASK_BLOBS))
    # The id follows creation and has an index; created_at has none.
    ordering = ["-id"]
    list_filter = ["status", "is_partial", "success", "source", TaskCategoryFilter, "model"]
    search_fields = ["session_id", "task__name", "error"]
    raw_id_fields = ["task", "created_by"]
    inlines = [TrainingExampleInline]


@admin.register(Message)
class MessageAdmin(BigTableAdmin):
    list_display = ["execution", "seq", "type", "subtype", "step", "parent_tool_use_id", "uuid"]
    list_select_related = ["execution__task"]
    list_defer = ("payload", *(f"execution__{n}" for n in EXECUTION_BLOBS))
    list_filter = ["type"]
    search_fields = ["uuid", "execution__session_id"]
    raw_id_fields = ["execution"]


@admin.register(ToolCall)
class ToolCallAdmin(BigTableAdmin):
    list_display = ["execution", "name", "is_error", "agent_id", "tool_use_id"]
    list_select_related = ["execution__task"]
    list_defer = (
        "input",
        "result",
        "structured_result",
        *(f"execution__{n}" for n in EXECUTION_BLOBS),
    )
    list_filter = ["name", "is_error"]
    search_fields = ["tool_use_id", "execution__session_id"]
    raw_id_fields = ["execution", "requested_in", "answered_in"]


@admin.register(AgentAction)
class AgentActionAdmin(BigTableAdmin):
    list_display = ["execution", "agent_id", "role", "action_type", "tool_name", "confidence"]
    list_select_related = ["execution__task"]
    list_defer = ("content", "reasoning", *(f"execution__{n}" for n in EXECUTION_BLOBS))
    list_filter = ["role", "action_type"]
    search_fields = ["agent_id", "reasoning"]
    raw_id_fields = ["execution", "parent"]


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReviewEventInline(ReadOnlyInline):
    """The example's review history: only ever written by collection.review."""

    model = ReviewEvent
    fields = readonly_fields = ("at", "user", "field", "before", "after", "reason", "via")
    verbose_name_plural = "review history"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReviewEvent]:
        return super().get_queryset(request).select_related("user")


class StepMarkInline(ReadOnlyInline):
    model = StepMark
    fields = readonly_fields = ("message", "comment", "created_by", "created_at")
    verbose_name_plural = "bad steps"

    def get_queryset(self, request: HttpRequest) -> QuerySet[StepMark]:
        return super().get_queryset(request).select_related("message", "created_by")


class ReviewActionForm(ActionForm):
    tags = forms.CharField(
        required=False, help_text="For the tag actions: comma-separated tags to add or remove."
    )


def _tags_from(request: HttpRequest) -> list[str]:
    return [t.strip() for t in request.POST.get("tags", "").split(",") if t.strip()]


@admin.register(TrainingExample)
class TrainingExampleAdmin(BigTableAdmin):
    list_select_related = ["execution__task", "reviewer"]
    list_defer = (
        "annotations",
        "search_text",
        *(f"execution__{n}" for n in EXECUTION_BLOBS),
        *(f"execution__task__{n}" for n in TASK_BLOBS),
    )
    list_display = [
        "id",
        "task_name",
        "category",
        "quality_score",
        "is_golden",
        "validated",
        "reviewer",
        "reviewed_at",
    ]
    list_filter = [
        "is_golden",
        "validated",
        ExampleCategoryFilter,
        "execution__task__difficulty",
        "execution__status",
        "execution__source",
    ]
    search_fields = ["execution__task__name", "validator_notes"]
    raw_id_fields = ["execution", "duplicate_of"]
    readonly_fields = REVIEW_FIELDS
    inlines = [ReviewEventInline, StepMarkInline]
    action_form = ReviewActionForm
    actions = [
        "rescore",
        "mark_golden",
        "unmark_golden",
        "mark_validated",
        "unmark_validated",
        "add_tags",
        "remove_tags",
    ]

    @admin.display(ordering="execution__task__name")
    def task_name(self, obj: TrainingExample) -> str:
        return obj.execution.task.name

    @admin.action(description="Rescore with the configured scorer (background job)")
    def rescore(self, request: HttpRequest, queryset: QuerySet[TrainingExample]) -> None:
        from collection.jobs.actors import rescore_examples

        ids = list(queryset.values_list("pk", flat=True))
        transaction.on_commit(lambda: rescore_examples.send(ids))
        self.message_user(request, f"Queued rescoring of {len(ids)} examples.", messages.SUCCESS)

    # Rulings, like the example page's: recorded, and rescoring keeps them.
    @admin.action(description="Mark as golden", permissions=["review"])
    def mark_golden(self, request: HttpRequest, queryset: QuerySet[TrainingExample]) -> None:
        n = review.set_golden(queryset, signed_in_user(request), True, via="admin")
        self.message_user(request, f"Marked {n} examples golden.", messages.SUCCESS)

    @admin.action(description="Unmark golden", permissions=["review"])
    def unmark_golden(self, request: HttpRequest, queryset: QuerySet[TrainingExample]) -> None:
        n = review.set_golden(queryset, signed_in_user(request), False, via="admin")
        self.message_user(request, f"Unmarked {n} examples.", messages.SUCCESS)

    @admin.action(description="Mark as validated", permissions=["review"])
    def mark_validated(self, request: HttpRequest, queryset: QuerySet[TrainingExample]) -> None:
        n = review.set_validated(queryset, signed_in_user(request), True, via="admin")
        self.message_user(request, f"Marked {n} examples validated.", messages.SUCCESS)

    @admin.action(description="Unmark validated", permissions=["review"])
    def unmark_validated(self, request: HttpRequest, queryset: QuerySet[TrainingExample]) -> None:
        n = review.set_validated(queryset, signed_in_user(request), False, via="admin")
        self.message_user(request, f"Unmarked {n} examples as validated.", messages.SUCCESS)

    @admin.action(description="Add the tags below", permissions=["review"])
    def add_tags(self, request: HttpRequest, queryset: QuerySet[TrainingExample]) -> None:
        self._tag(request, queryset, review.add_tags, "Tagged {n} examples with {tags}.")

    @admin.action(description="Remove the tags below", permissions=["review"])
    def remove_tags(self, request: HttpRequest, queryset: QuerySet[TrainingExample]) -> None:
        self._tag(request, queryset, review.remove_tags, "Removed {tags} from {n} examples.")

    def _tag(
        self,
        request: HttpRequest,
        queryset: QuerySet[TrainingExample],
        edit: Callable[..., int],
        done: str,
    ) -> None:
        tags = _tags_from(request)
        try:
            n = edit(queryset, signed_in_user(request), tags, via="admin")
        except review.ReviewError as exc:
            self.message_user(request, f"Nothing changed: {exc}.", messages.ERROR)
            return
        self.message_user(request, done.format(n=n, tags=", ".join(tags)), messages.SUCCESS)

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REVIEW)


@admin.register(CollectionJob)
class CollectionJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "task",
        "status",
        "attempts",
        "progress_line",
        "created_by",
        "started_at",
        "finished_at",
    ]
    list_select_related = ["task", "created_by"]
    list_filter = ["status", "kind"]
    search_fields = ["task__name", "error", "plan_key"]
    raw_id_fields = ["task", "execution", "created_by", "batch"]
    readonly_fields = ["lease_owner", "lease_expires_at", "attempts", "progress"]
    actions = ["cancel", "requeue"]

    @admin.display(description="progress")
    def progress_line(self, job: CollectionJob) -> str:
        done = job.progress or {}
        return f"{done.get('messages', 0)} msg · {done.get('tool_calls', 0)} tools"

    @admin.action(description="Cancel (running jobs stop at their next check)")
    def cancel(self, request: HttpRequest, queryset: QuerySet[CollectionJob]) -> None:
        active = [job for job in queryset.select_related("execution") if job.is_active]
        for job in active:
            with suppress(IllegalTransition):  # it ended meanwhile
                stop_job(job)
        self.message_user(request, f"Asked {len(active)} jobs to stop.", messages.SUCCESS)

    @admin.action(
        description="Queue again (failed or cancelled jobs with a fresh execution; running "
        "jobs whose worker is gone)"
    )
    def requeue(self, request: HttpRequest, queryset: QuerySet[CollectionJob]) -> None:
        again = live = 0
        for job in queryset.select_related("execution"):
            if job.can("requeue"):
                job.requeue()
                again += 1
            elif job.status == JobStatus.RUNNING:
                # A lapsed lease: queued for its next attempt (or ended, out of attempts).
                done = revive(job)
                again += done == "requeued"
                live += not done
        note = f" {live} running under a live lease were left alone." if live else ""
        self.message_user(request, f"Queued {again} jobs again.{note}", messages.SUCCESS)


@admin.register(GenerationBatch)
class GenerationBatchAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "status", "cancel_requested", "created_by", "created_at"]
    list_select_related = ["created_by"]
    list_filter = ["status"]
    search_fields = ["name"]
    raw_id_fields = ["created_by"]


@admin.register(ImportUpload)
class ImportUploadAdmin(admin.ModelAdmin):
    list_display = ["id", "file_name", "size", "status", "created_by", "created_at"]
    list_select_related = ["created_by"]
    list_filter = ["status"]
    search_fields = ["file_name", "error"]
    raw_id_fields = ["created_by"]
    # The folder an upload names is imported and then removed: only an upload makes one.
    readonly_fields = ["report", "path"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
