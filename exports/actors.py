"""The export actor: thin, takes a job id, calls the service (exports.jobs.run_export_job)."""

from __future__ import annotations

import dramatiq

from exports.jobs import run_export_job
from exports.models import ExportJob
from trainingdash.broker import setup_broker

setup_broker()


@dramatiq.actor(
    actor_name=ExportJob.actor_name,
    queue_name=ExportJob.queue_name,
    time_limit=6 * 60 * 60 * 1000,
)
def run_export(job_id: int) -> None:
    run_export_job(job_id)
