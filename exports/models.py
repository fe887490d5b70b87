"""Export jobs: what was asked (format, options, filters or a selection), how far the worker got,
and the bundle it left (a zip in the `exports` storage, named by us, kept until `expires_at`).

    job = start_export("jsonl", ExportOptions(), filters={"category": "debugging"}, user=user)
    run_export_job(job.pk)          # what the actor calls (exports.jobs)
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from collection.models import JobStatus, LeasedJob


def _json_dict() -> dict:
    return {}


class ExportJob(LeasedJob):
    """One export, run by a worker under a lease (`LeasedJob`: a job whose worker died is taken
    over once its lease lapses, and starts again)."""

    format = models.CharField(max_length=32)
    options = models.JSONField(default=_json_dict)
    # The list's filters (collection.queries.ExampleFilters, as JSON) for "all matching" ...
    filters = models.JSONField(default=_json_dict, blank=True)
    # ... or the selected examples' ids; null means "every example the filters match".
    example_ids = models.JSONField(null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    # The zip's name in the exports storage: chosen by us, never by a request.
    bundle_name = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    # records read, rows written, rows left out by reason (from the manifest).
    counts = models.JSONField(default=_json_dict, blank=True)
    manifest = models.JSONField(default=_json_dict, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    queue_name = "exports"
    actor_name = "run_export_job"

    class Meta(LeasedJob.Meta):
        abstract = False
        permissions = [("download_exportjob", "Can download export bundles")]

    def __str__(self) -> str:
        return f"{self.format} export {self.pk} [{self.status}]"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def has_bundle(self) -> bool:
        """Whether there is a bundle to download (finished, not expired, not pruned)."""
        return self.status == JobStatus.SUCCEEDED and bool(self.bundle_name) and not self.is_expired

    @property
    def can_requeue(self) -> bool:
        return self.can("requeue")

    @property
    def percent(self) -> int:
        if self.status == JobStatus.SUCCEEDED:
            return 100
        return int(100 * self.progress_done / self.progress_total) if self.progress_total else 0

    @property
    def scope(self) -> str:
        """What was exported, in a few words."""
        if self.example_ids is not None:
            return f"{len(self.example_ids)} selected"
        if not self.filters:
            return "all examples"
        return ", ".join(f"{k}={v}" for k, v in sorted(self.filters.items()))

    def acquire(self, owner: str = "", **fields: Any) -> None:
        super().acquire(owner, progress_done=0, **fields)  # a taken-over export starts again

    def requeue(self, **fields: Any) -> None:
        """Run the export again from the start (an earlier attempt left no bundle)."""
        super().requeue(progress_done=0, bundle_name="", size=0, expires_at=None, **fields)
