from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from collection.models import (
    AgentAction,
    CollectionJob,
    Execution,
    GenerationBatch,
    ImportUpload,
    Message,
    Task,
    ToolCall,
    TrainingExample,
)
from collection.review import set_golden
from collection.roles import REVIEW, signed_in_user


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["name", "category", "difficulty", "source_template", "created_at"]
    list_filter = ["category", "difficulty"]
    search_fields = ["name", "description", "source_template"]


class TrainingExampleInline(admin.StackedInline):
    model = TrainingExample
    extra = 0
    raw_id_fields = ["reviewer"]


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
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
    list_filter = ["status", "is_partial", "success", "source", "task__category", "model"]
    search_fields = ["session_id", "task__name", "error"]
    raw_id_fields = ["task", "created_by"]
    date_hierarchy = "created_at"
    inlines = [TrainingExampleInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["execution", "seq", "type", "subtype", "step", "parent_tool_use_id", "uuid"]
    list_filter = ["type"]
    search_fields = ["uuid", "execution__session_id"]
    raw_id_fields = ["execution"]


@admin.register(ToolCall)
class ToolCallAdmin(admin.ModelAdmin):
    list_display = ["execution", "name", "is_error", "agent_id", "tool_use_id"]
    list_filter = ["name", "is_error"]
    search_fields = ["tool_use_id", "execution__session_id"]
    raw_id_fields = ["execution", "requested_in", "answered_in"]


@admin.register(AgentAction)
class AgentActionAdmin(admin.ModelAdmin):
    list_display = ["execution", "agent_id", "role", "action_type", "tool_name", "confidence"]
    list_filter = ["role", "action_type"]
    search_fields = ["agent_id", "reasoning"]
    raw_id_fields = ["execution", "parent"]


@admin.register(TrainingExample)
class TrainingExampleAdmin(admin.ModelAdmin):
    list_select_related = ["execution__task", "reviewer"]
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
        "execution__task__category",
        "execution__task__difficulty",
        "execution__status",
        "execution__source",
    ]
    search_fields = ["execution__task__name", "validator_notes"]
    raw_id_fields = ["execution", "reviewer"]
    actions = ["rescore", "mark_golden", "unmark_golden"]

    @admin.display(ordering="execution__task__name")
    def task_name(self, obj: TrainingExample) -> str:
        return obj.execution.task.name

    @admin.display(ordering="execution__task__category")
    def category(self, obj: TrainingExample) -> str:
        return obj.execution.task.category

    @admin.action(description="Rescore with the configured scorer (background job)")
    def rescore(self, request: HttpRequest, queryset: QuerySet[TrainingExample]) -> None:
        from collection.jobs.actors import rescore_examples

        ids = list(queryset.values_list("pk", flat=True))
        transaction.on_commit(lambda: rescore_examples.send(ids))
        self.message_user(request, f"Queued rescoring of {len(ids)} examples.", messages.SUCCESS)

    # A reviewer's ruling, like the example page's: rescoring keeps it.
    @admin.action(description="Mark as golden", permissions=["review"])
    def mark_golden(self, request: HttpRequest, queryset: QuerySet[TrainingExample]) -> None:
        n = set_golden(queryset, signed_in_user(request), golden=True)
        self.message_user(request, f"Marked {n} examples golden.", messages.SUCCESS)

    @admin.action(description="Unmark golden", permissions=["review"])
    def unmark_golden(self, request: HttpRequest, queryset: QuerySet[TrainingExample]) -> None:
        n = set_golden(queryset, signed_in_user(request), golden=False)
        self.message_user(request, f"Unmarked {n} examples.", messages.SUCCESS)

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
        active = [job for job in queryset if job.is_active]
        for job in active:
            job.request_cancel()
        self.message_user(request, f"Asked {len(active)} jobs to stop.", messages.SUCCESS)

    @admin.action(description="Queue again (failed or cancelled jobs, with a fresh execution)")
    def requeue(self, request: HttpRequest, queryset: QuerySet[CollectionJob]) -> None:
        again = [job for job in queryset if job.can("requeue")]
        for job in again:
            job.requeue()
        self.message_user(request, f"Queued {len(again)} jobs again.", messages.SUCCESS)


@admin.register(GenerationBatch)
class GenerationBatchAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "status", "cancel_requested", "created_by", "created_at"]
    list_filter = ["status"]
    search_fields = ["name"]
    raw_id_fields = ["created_by"]


@admin.register(ImportUpload)
class ImportUploadAdmin(admin.ModelAdmin):
    list_display = ["id", "file_name", "size", "status", "created_by", "created_at"]
    list_filter = ["status"]
    search_fields = ["file_name", "error"]
    raw_id_fields = ["created_by"]
    readonly_fields = ["report"]
