"""Dramatiq actors: thin, ids only, each calling a service function tests can call directly.

Actors import services, never the reverse: services queue their jobs by actor name
(`BackgroundJob.queue()`), and the names and queues come from the job models.
"""

from __future__ import annotations

import logging

import dramatiq

from collection.importers.watch import DEFAULT_INTERVAL, scan_configured
from collection.jobs import dead_letters, reconciler
from collection.jobs.runner import leased, run_job
from collection.jobs.uploads import run_import_upload
from collection.models import (
    CollectionJob,
    IllegalTransition,
    ImportUpload,
    TrainingExample,
    this_thread,
)
from collection.scoring import rescore
from trainingdash.broker import setup_broker

log = logging.getLogger(__name__)

# Every worker process loads this module: each runs the reconciler (collection.jobs.reconciler)
# and keeps the error of each message it dead-letters (collection.jobs.dead_letters).
reconciler.install(setup_broker())
dead_letters.install(setup_broker())


@dramatiq.actor(queue_name="maintenance", max_retries=3, time_limit=30 * 60 * 1000)
def rescore_examples(example_ids: list[int], scorer: str = "") -> int:
    return rescore(TrainingExample.objects.filter(pk__in=example_ids), scorer or None)


@dramatiq.actor(
    actor_name=CollectionJob.actor_name,
    queue_name=CollectionJob.queue_name,
    time_limit=6 * 60 * 60 * 1000,
)
def run_collection_job(job_id: int) -> None:
    run_job(job_id)


@dramatiq.actor(
    actor_name=ImportUpload.actor_name,
    queue_name=ImportUpload.queue_name,
    time_limit=6 * 60 * 60 * 1000,
)
def import_upload(upload_id: int) -> None:
    with leased(ImportUpload, upload_id, this_thread()):
        try:
            run_import_upload(upload_id)
        except IllegalTransition:
            # Ended by another attempt meanwhile: one of the two had its lease lapse (paused).
            log.warning("import upload %s: ended by another attempt; left as it is", upload_id)


@dramatiq.actor(queue_name=ImportUpload.queue_name, max_retries=0, time_limit=30 * 60 * 1000)
def watch_imports() -> None:
    """Scan TRAININGDASH_IMPORT_WATCH once, then again after an interval while it is set.

    Not retried: the next scan is the retry. Sent once by whoever starts the worker; a second
    chain would only repeat scans, which import nothing twice.
    """
    configured = True
    try:
        configured = scan_configured() is not None
    finally:
        if configured:
            # The installed broker, as services send (trainingdash.broker.send), not the
            # actor's own: a test's StubBroker then sees the next scan.
            message = watch_imports.message()
            dramatiq.get_broker().enqueue(message, delay=int(DEFAULT_INTERVAL * 1000))
