"""A canary secret planted in a real session never leaves the system of record.

The session runs for real (a worker subprocess through Redis, the Claude Code CLI, the scripted
model): the agent's command holds an AWS key (tool input), the command prints it (tool output)
and the agent repeats it (assistant text). Then the key must not be in:

- the queue: every Dramatiq message in Redis, read while the jobs wait there;
- the logs: the worker's output (its log file) and every record logged in this process;
- error pages: the 400/404 pages around the example;
- any export: a bundle of every format (`exports.formats.FORMATS` and the Hugging Face
  dataset), files and manifest alike; the export's page; the analytics page, HTML report and
  CSV zip.

Decided: the trajectory pages (example, execution, tool output, raw message) show the key to
every signed-in role. That is the data as the agent saw it, and reviewers judge a session by
it; redaction is for what leaves the system. `trajectory_pages_show_the_secret_to_readers`
pins that decision.
"""

from __future__ import annotations

import io
import logging
import secrets
import string
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client

from collection.jobs.runner import create_job
from collection.models import CollectionJob, JobStatus, TrainingExample
from collection.review import set_validated
from collection.sessions.spec import JobSpec
from exports.bundles import bundle_path, format_choices
from exports.jobs import start_export
from exports.models import ExportJob
from exports.options import ExportOptions
from tests.factories import make_task
from tests.sessions import FIX_SCRIPT, TOOLS, VERIFIER, make_workspace
from tests.test_broker import start_worker, stop_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# An AWS access key id (AKIA + 16 of A-Z2-7) and a secret access key, fresh per run, so that
# nothing can pass by having the value written into it.
KEY_ID = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(16))
SECRET = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
CANARIES = (KEY_ID, SECRET)


def leaks(text: str | bytes) -> list[str]:
    data = text if isinstance(text, str) else text.decode("utf-8", "replace")
    return [canary for canary in CANARIES if canary in data]


PLANT = [
    {"thinking": "Check which credentials the deploy script would use."},
    {
        "tool": "Bash",
        "input": {"command": f"echo aws_access_key_id={KEY_ID} aws_secret_access_key={SECRET}"},
    },
    {"text": f"The deploy uses key {KEY_ID} with aws_secret_access_key={SECRET}."},
]
# Two sessions of one task: one fixes it (a verified success), one stops after the secret (a
# verified failure), so that every format, preference pairs and step labels included, has
# something to write.
SCRIPTS = ([*PLANT, *FIX_SCRIPT], [*PLANT, {"text": "Done."}])


def redis_dump(client: redis.Redis, namespace: str) -> bytes:
    """Everything under the namespace's keys: queues, delay queues, acks, results."""
    found: list[Any] = []
    for key in client.scan_iter(f"{namespace}*"):
        kind = client.type(key)
        if kind == b"list":
            found += client.lrange(key, 0, -1)
        elif kind == b"hash":
            found += [*client.hgetall(key).keys(), *client.hgetall(key).values()]
        elif kind == b"zset":
            found += client.zrange(key, 0, -1)
        elif kind == b"set":
            found += list(client.smembers(key))
        elif kind == b"string":
            found.append(client.get(key) or b"")
    return b"\n".join(found)


@pytest.fixture
def queue(settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    for key in client.scan_iter(f"{settings.DRAMATIQ_NAMESPACE}*"):
        client.delete(key)


def run_worker_until(condition, log: Path) -> None:
    """Run a real worker until `condition()` holds; its output is appended to `log`."""
    worker = start_worker()
    try:
        done = wait_for(condition, timeout=180)
    finally:
        output = stop_worker(worker)
        with log.open("a") as file:
            file.write(output)
    assert done, output[-3000:]


@pytest.fixture
def collected(settings, tmp_path, queue, caplog, admin_user) -> dict:
    """The planted session, collected by a real worker, and every export of it."""
    caplog.set_level(logging.DEBUG)
    settings.DATA_DIR = tmp_path / "data"
    worker_log = tmp_path / "worker.log"
    task = make_task(name="Deploy credentials")
    jobs = [
        create_job(
            task,
            JobSpec(
                prompt="Find which AWS credentials the deploy uses, then fix the test.",
                allowed_tools=TOOLS,
                script=script,
                workspace=str(make_workspace(tmp_path / f"workspace-{n}")),
                verifier=VERIFIER,
            ),
        )
        for n, script in enumerate(SCRIPTS)
    ]
    queued = [redis_dump(queue, settings.DRAMATIQ_NAMESPACE)]
    ids = [job.pk for job in jobs]
    run_worker_until(
        lambda: all(j.is_finished for j in CollectionJob.objects.filter(pk__in=ids)), worker_log
    )
    finished = CollectionJob.objects.filter(pk__in=ids).order_by("pk")
    assert [j.status for j in finished] == [JobStatus.SUCCEEDED] * 2, [j.error for j in finished]
    assert [j.execution and j.execution.success for j in finished] == [True, False]
    examples = TrainingExample.objects.filter(execution__job__in=ids).order_by("pk")
    # Reviewed examples: every format's filters let them through.
    set_validated(examples, admin_user, True)
    example = examples[0]

    options = ExportOptions(include_thinking=True, exclude_duplicates=False)
    exports = [
        start_export(name, options, example_ids=[e.pk for e in examples])
        for name, _title in format_choices()
    ]
    queued.append(redis_dump(queue, settings.DRAMATIQ_NAMESPACE))
    pending = [e.pk for e in exports]
    run_worker_until(
        lambda: all(e.is_finished for e in ExportJob.objects.filter(pk__in=pending)), worker_log
    )
    return {
        "example": example,
        "exports": list(ExportJob.objects.filter(pk__in=pending)),
        "queued": queued,
        "worker_log": worker_log,
    }


def session_holds_the_secret_where_it_was_planted(collected: dict) -> None:
    execution = collected["example"].execution
    (call,) = [c for c in execution.tool_calls.all() if KEY_ID in str(c.input)]
    assert leaks(str(call.input)) == list(CANARIES)  # tool input
    assert leaks(str(call.result)) == list(CANARIES)  # tool output
    texts = [str(m.payload) for m in execution.messages.filter(type="assistant")]
    assert any(leaks(text) == list(CANARIES) for text in texts if "The deploy uses" in text)


def queue_messages_never_hold_the_secret(collected: dict) -> None:
    collection_queue, export_queue = collected["queued"]
    assert b"run_collection_job" in collection_queue  # the jobs were read while they waited
    assert len(collected["exports"]) > 1 and b"export" in export_queue
    assert leaks(collection_queue) == [] and leaks(export_queue) == []


def logs_never_hold_the_secret(collected: dict, caplog: pytest.LogCaptureFixture) -> None:
    log = collected["worker_log"].read_text()
    assert "Worker process is ready" in log  # the file holds what the worker printed
    assert leaks(log) == []
    assert leaks(caplog.text) == []
    assert all(leaks(str(r.args)) == [] for r in caplog.records)


def no_export_format_lets_the_secret_out(collected: dict, admin_client: Client) -> None:
    exports = collected["exports"]
    assert {e.format for e in exports} == {name for name, _ in format_choices()}
    for export in exports:
        assert export.status == JobStatus.SUCCEEDED, (export.format, export.error)
        path = bundle_path(export.bundle_name)
        assert path is not None
        with zipfile.ZipFile(path) as bundle:
            for name in bundle.namelist():
                assert leaks(bundle.read(name)) == [], (export.format, name)
        assert export.counts["written"] >= 1, (export.format, export.counts)
        assert export.manifest["redactions"] == {"aws_key": ANY, "aws_secret": ANY}
        page = admin_client.get(f"/exports/{export.pk}/")
        assert page.status_code == 200 and leaks(page.content) == [], export.format
        download = admin_client.get(f"/exports/{export.pk}/download/")
        assert leaks(b"".join(download.streaming_content)) == []  # type: ignore[attr-defined]


def analytics_never_show_the_secret(collected: dict, admin_client: Client) -> None:
    for url in ("/analytics/", "/analytics/report.html"):
        response = admin_client.get(url)
        assert response.status_code == 200 and leaks(response.content) == [], url
    report = admin_client.get("/analytics/report.zip")
    with zipfile.ZipFile(io.BytesIO(report.content)) as csvs:
        assert all(leaks(csvs.read(name)) == [] for name in csvs.namelist())


def error_pages_never_show_the_secret(collected: dict, admin_client: Client) -> None:
    example = collected["example"]
    execution = example.execution
    pages = [
        admin_client.get(f"/executions/{execution.pk}/messages/999999/raw/"),  # 404
        admin_client.get(f"/executions/{execution.pk}/tool-calls/999999/"),  # 404
        admin_client.post(f"/examples/{example.pk}/steps/", {"message": 999999}),  # 400
        # 400: the review panel with its errors (without htmx, the queue page around it shows
        # the trajectory itself, as the example's page does)
        admin_client.post(
            f"/examples/{example.pk}/review/", {"quality_override": "x"}, HTTP_HX_REQUEST="true"
        ),
        admin_client.get("/examples/?min_quality=high"),  # 400
    ]
    assert [p.status_code for p in pages] == [404, 404, 400, 400, 400]
    assert all(leaks(p.content) == [] for p in pages)


def trajectory_pages_show_the_secret_to_readers(collected: dict, viewer: User) -> None:
    """Decided: the stored session is shown as it is (see the module docstring)."""
    client = Client()
    client.force_login(viewer)
    execution = collected["example"].execution
    (call,) = [c for c in execution.tool_calls.all() if KEY_ID in str(c.input)]
    page = client.get(f"/examples/{collected['example'].pk}/")
    assert leaks(page.content) == list(CANARIES)
    output = client.get(f"/executions/{execution.pk}/tool-calls/{call.pk}/")
    assert KEY_ID in output.content.decode()


def test_a_secret_planted_in_a_session_never_leaves_the_system(
    collected, admin_client, viewer, caplog
):
    session_holds_the_secret_where_it_was_planted(collected)
    queue_messages_never_hold_the_secret(collected)
    no_export_format_lets_the_secret_out(collected, admin_client)
    analytics_never_show_the_secret(collected, admin_client)
    error_pages_never_show_the_secret(collected, admin_client)
    trajectory_pages_show_the_secret_to_readers(collected, viewer)
    # Last: the logs of everything above, the worker's and this process's.
    logs_never_hold_the_secret(collected, caplog)
