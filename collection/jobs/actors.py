"""Dramatiq actors: thin, ids only, each calling a service function tests can call directly."""

from __future__ import annotations

import dramatiq

from trainingdash.broker import setup_broker

setup_broker()


@dramatiq.actor(queue_name="maintenance", max_retries=3, time_limit=30 * 60 * 1000)
def rescore_examples(example_ids: list[int], scorer: str = "") -> int:
    from collection.models import TrainingExample
    from collection.scoring import rescore

    return rescore(TrainingExample.objects.filter(pk__in=example_ids), scorer or None)


@dramatiq.actor(queue_name="collection", time_limit=6 * 60 * 60 * 1000)
def run_collection_job(job_id: int) -> None:
    from collection.jobs.runner import run_job

    run_job(job_id)


@dramatiq.actor(queue_name="imports", time_limit=6 * 60 * 60 * 1000)
def import_upload(upload_id: int) -> None:
    from collection.jobs.uploads import run_import_upload

    run_import_upload(upload_id)
