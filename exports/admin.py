"""The admin: export jobs (cancel, run again), and "Export selected as <format>" actions on the
training example change list. Actions only queue a job; the worker builds the bundle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from collection.models import TrainingExample
from collection.roles import signed_in_user
from exports.bundles import format_choices
from exports.jobs import start_export
from exports.models import ExportJob
from exports.options import ExportOptions


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "format", "status", "progress", "size", "created_by", "created_at"]
    list_select_related = ["created_by"]
    list_filter = ["status", "format"]
    raw_id_fields = ["created_by"]
    readonly_fields = [
        "bundle_name",
        "size",
        "counts",
        "manifest",
        "lease_owner",
        "lease_expires_at",
        "attempts",
        "progress_done",
        "progress_total",
    ]
    actions = ["cancel", "requeue"]

    @admin.display(description="progress")
    def progress(self, job: ExportJob) -> str:
        return f"{job.progress_done} / {job.progress_total}"

    @admin.action(description="Cancel (running exports stop at their next progress report)")
    def cancel(self, request: HttpRequest, queryset: QuerySet[ExportJob]) -> None:
        active = [job for job in queryset if job.is_active]
        for job in active:
            job.request_cancel()
        self.message_user(request, f"Asked {len(active)} exports to stop.", messages.SUCCESS)

    @admin.action(description="Run again (failed or cancelled exports)")
    def requeue(self, request: HttpRequest, queryset: QuerySet[ExportJob]) -> None:
        again = [job for job in queryset if job.can_requeue]
        for job in again:
            job.requeue()
        self.message_user(request, f"Queued {len(again)} exports again.", messages.SUCCESS)


AdminAction = Callable[[admin.ModelAdmin, HttpRequest, QuerySet[TrainingExample]], None]


def export_action(format_name: str, title: str) -> AdminAction:
    """The admin action that queues an export of the chosen examples as `format_name`.
    ("Select all N" in the change list makes the selection every example the list matches.)"""

    def action(
        model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[TrainingExample]
    ) -> None:
        ids = list(queryset.order_by().values_list("pk", flat=True))
        job = start_export(
            format_name, ExportOptions(), example_ids=ids, user=signed_in_user(request)
        )
        link = reverse("exports-job-detail", args=[job.pk])
        message = format_html(
            'Queued export #{} of {} examples as {}: <a href="{}">follow it</a>.',
            job.pk,
            len(ids),
            title,
            link,
        )
        model_admin.message_user(request, message, messages.SUCCESS)

    action.__name__ = f"export_as_{format_name}"
    return admin.action(description=f"Export selected as {title}", permissions=["export"])(action)


def add_example_actions(site: admin.AdminSite = admin.site) -> None:
    """Give the training example admin one export action per format, and the permission check
    they name (`has_export_permission`). Called once the admin has loaded (AppConfig.ready)."""
    example_admin: Any = site._registry.get(TrainingExample)
    if example_admin is None:
        return
    names = {getattr(a, "__name__", a) for a in example_admin.actions}
    new = [export_action(n, t) for n, t in format_choices() if f"export_as_{n}" not in names]
    example_admin.actions = [*example_admin.actions, *new]
    example_admin.has_export_permission = _can_export


def _can_export(request: HttpRequest) -> bool:
    return request.user.has_perm("exports.add_exportjob")
