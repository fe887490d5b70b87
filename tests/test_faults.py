"""Faults against real processes and services: each job reaches exactly one final state.

Workers are real `dramatiq` processes on a real Redis (tests/test_broker.py) that only the
reconciler revives (tests/test_reconciler.py); sessions run the bundled CLI against the
scripted model. Times are printed (`-s`) for the closing note, never asserted tightly.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse

from collection.jobs.runner import create_job
from collection.models import CollectionJob, Execution, JobStatus, TaskStatus
from collection.sessions.trajectory import TrajectoryRecorder
from exports.bundles import exports_dir
from exports.jobs import delete_bundle, retry_export, run_export_job
from exports.models import ExportJob
from exports.options import ExportOptions
from tests.factories import (
    assistant_payload,
    make_example,
    make_execution,
    make_task,
    result_payload,
    tool_use,
)
from tests.sessions import fix_spec, make_workspace
from tests.test_broker import ROOT, start_slow_fix, start_worker, stop_worker, wait_for, worker_env
from tests.test_reconciler import RECONCILING, dead_letters, redis_broker
from trainingdash import broker as broker_module

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["redis_broker"]  # the fixture, shared with tests/test_reconciler.py


def assert_stored_once(execution: Execution, *, result: bool = True) -> None:
    assert execution.messages.filter(type="result").count() == int(result)
    names = list(execution.tool_calls.values_list("name", flat=True))
    assert names == ["Read", "Edit", "Bash"]  # each tool step once
    uuids = list(execution.messages.exclude(uuid="").values_list("uuid", flat=True))
    assert len(uuids) == len(set(uuids))


# --- SIGTERM during a session -----------------------------------------------------------------


def test_a_worker_sent_sigterm_mid_session_finishes_the_session_once_then_exits(
    redis_broker, tmp_path
):
    worker, job = start_slow_fix(tmp_path, **RECONCILING)
    signalled = time.monotonic()
    os.kill(worker.pid, signal.SIGTERM)  # `kill PID`, or a container's stop: the main process
    try:
        output = worker.communicate(timeout=60)[0]
    finally:
        stop_worker(worker)
    took = time.monotonic() - signalled
    print(f"SIGTERM: the worker finished its session and exited {took:.1f} s later")
    assert worker.returncode == 0, output
    job.refresh_from_db()
    assert (job.status, job.attempts, job.lease_expires_at) == (JobStatus.SUCCEEDED, 1, None)
    execution = Execution.objects.get()
    assert execution.status == TaskStatus.COMPLETED and execution.success
    assert "interrupted_attempts" not in execution.metadata
    assert_stored_once(execution)
    assert dead_letters(redis_broker) == 0


def session_clis(worker: subprocess.Popen[str]) -> list[int]:
    """The pids of the bundled CLIs running in `worker`'s process group."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue  # it exited meanwhile
        if int(fields[2]) == worker.pid and b"_bundled/claude" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


def test_sigterm_to_the_sessions_cli_fails_its_job_once_with_the_reason(
    redis_broker, tmp_path, admin_user, client
):
    # A group-wide SIGTERM (systemd's default KillMode, ^C in a terminal) reaches the CLI too;
    # when the worker outlives it a moment, this is what it sees. When it does not, its job
    # is that of a killed worker (tests/test_reconciler.py).
    worker, job = start_slow_fix(tmp_path, **RECONCILING)
    try:
        (cli,) = session_clis(worker)
        os.kill(cli, signal.SIGTERM)
        signalled = time.monotonic()
        done = wait_for(lambda: CollectionJob.objects.get(pk=job.pk).is_finished, 60)
        took = time.monotonic() - signalled
    finally:
        output = stop_worker(worker)
    assert done, output
    print(f"SIGTERM to the CLI: the job ended {took:.1f} s later")
    job.refresh_from_db()
    assert (job.status, job.attempts, job.lease_expires_at) == (JobStatus.FAILED, 1, None)
    assert "exit code 143" in job.error  # 128 + SIGTERM
    (execution,) = Execution.objects.all()
    assert execution.status == TaskStatus.FAILED and execution.is_partial
    assert "exit code 143" in execution.error and execution.success is False
    assert_stored_once(execution, result=False)  # it never got to its result
    client.force_login(admin_user)
    page = client.get(reverse("collection-job-detail", args=[job.pk])).content.decode()
    assert "exit code 143" in page


# --- the model endpoint failing -----------------------------------------------------------------


def run_in_worker(jobs: list[CollectionJob], timeout: float = 90) -> float:
    """Run `jobs` in a real worker until each has ended; how long that took."""
    started = time.monotonic()
    worker = start_worker(**RECONCILING)
    try:
        ids = [job.pk for job in jobs]
        done = wait_for(
            lambda: all(j.is_finished for j in CollectionJob.objects.filter(pk__in=ids)), timeout
        )
    finally:
        output = stop_worker(worker)
    assert done, output
    return time.monotonic() - started


@pytest.mark.parametrize(
    ("policy", "timeout_s", "error"),
    [
        ("model_error", 600, "API Error: 500"),  # the endpoint answers 500 to every request
        ("slow", 4, "timed out after 4s"),  # the endpoint never answers within the limit
    ],
)
def test_a_failing_model_endpoint_fails_the_job_with_its_error_on_the_page(
    redis_broker, tmp_path, admin_user, client, policy: str, timeout_s: float, error: str
):
    spec = fix_spec(
        make_workspace(tmp_path / "ws"), policy=policy, script=None, timeout_s=timeout_s
    )
    job = create_job(make_task(), spec)
    took = run_in_worker([job])
    print(f"model endpoint {policy}: the job failed {took:.1f} s after its worker started")
    job.refresh_from_db()
    assert (job.status, job.attempts, job.lease_expires_at) == (JobStatus.FAILED, 1, None)
    assert error in job.error
    execution = Execution.objects.get()
    assert execution.status == TaskStatus.FAILED and execution.success is not True
    assert not hasattr(execution, "training_example")  # no model answered: no example
    client.force_login(admin_user)
    page = client.get(reverse("collection-job-detail", args=[job.pk])).content.decode()
    assert error in page


# --- poison messages ----------------------------------------------------------------------------


def test_poison_messages_are_dead_lettered_once_and_a_malformed_spec_fails_its_job(
    redis_broker, tmp_path, admin_user, client
):
    queue, actor = CollectionJob.queue_name, CollectionJob.actor_name
    broker_module.send(queue, actor, 987654)  # a job that does not exist
    broker_module.send(queue, actor, "not-an-id")
    broker_module.send(queue, actor)  # no argument at all
    malformed = create_job(make_task(), fix_spec(make_workspace(tmp_path / "bad")))
    CollectionJob.objects.filter(pk=malformed.pk).update(spec={"prompt": "", "turns": "many"})
    good = create_job(make_task(), fix_spec(make_workspace(tmp_path / "ws")))

    run_in_worker([malformed, good])
    malformed.refresh_from_db()
    assert (malformed.status, malformed.attempts) == (JobStatus.FAILED, 1)
    assert malformed.error.startswith("ValidationError: ") and "turns" in malformed.error
    assert CollectionJob.objects.get(pk=good.pk).status == JobStatus.SUCCEEDED
    # Two messages no job can take: dead-lettered at once, not retried in a loop; the one for a
    # job that is gone has nothing to do.
    assert dead_letters(redis_broker) == 2
    assert redis_broker.client.zcard(f"{redis_broker.namespace}:collection.DQ") == 0
    client.force_login(admin_user)
    page = client.get(reverse("collection-job-detail", args=[malformed.pk])).content.decode()
    assert "ValidationError" in page and "turns" in page


# --- SQLite under concurrent web and worker writes ----------------------------------------------

WRITER = """
import sys, time
import django
django.setup()
from django.db import transaction
from collection.models import Task

role, seconds = sys.argv[1], float(sys.argv[2])
first = Task.objects.order_by("pk").values_list("pk", flat=True)[0]
done, slowest, deadline = 0, 0.0, time.monotonic() + seconds
while time.monotonic() < deadline:
    began = time.monotonic()
    with transaction.atomic():
        if role == "web":  # a view: reads, then writes what it read (a review, a tag)
            seen = Task.objects.filter(pk=first).values_list("description", flat=True)[0]
            Task.objects.filter(pk=first).update(description=str(len(seen) + done))
        else:  # a worker: a session's rows, several writes in one transaction
            task = Task.objects.create(name=f"w{done}", category="debugging", difficulty="easy")
            for n in range(5):
                Task.objects.filter(pk=task.pk).update(description=f"step {n}")
    done += 1
    slowest = max(slowest, time.monotonic() - began)
print(role, done, f"{slowest:.2f}")
"""


def sqlite_env(tmp_path: Path, settings_module: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    return env | {
        "DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": settings_module,
        "TRAININGDASH_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)]),
    }


def concurrent_writes(env: dict[str, str], seconds: float = 3) -> list[tuple[int, str]]:
    """Three web and three worker processes writing one file SQLite database at once."""
    roles = ["web", "worker"] * 3
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, role, str(seconds)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for role in roles
    ]
    return [(p.wait(timeout=120), p.communicate()[0]) for p in procs]


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    """A migrated file SQLite database in a data folder of its own, with one task."""
    env = sqlite_env(tmp_path, "trainingdash.settings")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    seed = "from collection.models import Task; Task.objects.create(name='seed', description='')"
    subprocess.run([*manage, "shell", "-v0", "-c", seed], cwd=ROOT, env=env, check=True)
    return tmp_path / "data" / "trainingdash.sqlite3"


def test_concurrent_web_and_worker_writes_to_sqlite_never_meet_a_locked_database(
    sqlite_file, tmp_path
):
    started = time.monotonic()
    results = concurrent_writes(sqlite_env(tmp_path, "trainingdash.settings"))
    print(f"SQLite, 6 writers for 3 s: {time.monotonic() - started:.1f} s; {results}")
    for code, output in results:
        assert code == 0 and "database is locked" not in output, output
        assert int(output.split()[1]) > 0, output  # each wrote, none was starved out


def test_the_same_writes_with_deferred_transactions_meet_a_locked_database(sqlite_file, tmp_path):
    # The control: what IMMEDIATE transactions in the settings prevent. A deferred
    # transaction that read first cannot wait for the write lock: SQLite refuses at once.
    (tmp_path / "deferred_settings.py").write_text(
        "from trainingdash.settings import *  # noqa\n"
        "DATABASES['default']['OPTIONS']['transaction_mode'] = 'DEFERRED'\n"
    )
    results = concurrent_writes(sqlite_env(tmp_path, "deferred_settings"))
    assert any("database is locked" in output for _, output in results), results


# --- the disk filling during an export ----------------------------------------------------------

EXPORT = """
import resource, sys
import django
django.setup()
from django.db import connection
from exports.jobs import run_export_job

job_id, limit = int(sys.argv[1]), int(sys.argv[2])
if connection.vendor == "sqlite":
    # The limit stands for the exports' disk, not the database's: this process only appends
    # to the write-ahead log (emptied by the test), never checkpoints into the big main file.
    connection.cursor().execute("PRAGMA wal_autocheckpoint=0")
# Python ignores SIGXFSZ: a write past the limit fails with EFBIG, as one on a full disk does.
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
job = run_export_job(job_id)
print(job.status if job else None, job.error if job else "")
"""


def export_in_subprocess(job_id: int, limit: int) -> str:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    run = subprocess.run(
        [sys.executable, "-c", EXPORT, str(job_id), str(limit)],
        cwd=ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def noisy_examples(n: int) -> list[int]:
    """`n` examples, one task each, whose tool output is random (it compresses badly)."""
    ids = []
    for n_task in range(n):
        execution = make_execution(make_task(name=f"task {n_task}"), status=TaskStatus.IN_PROGRESS)
        recorder = TrajectoryRecorder(execution)
        recorder.record({"type": "system", "subtype": "init", "uuid": "init", "tools": ["Bash"]})
        recorder.record({"type": "user", "uuid": "prompt", "message": {"content": "Fix it"}})
        call = tool_use("toolu_1", "Bash", command="cat data.bin | base64")
        recorder.record(assistant_payload([call], response="msg_1"))
        recorder.record(result_payload("toolu_1", base64.b64encode(os.urandom(12000)).decode()))
        recorder.record(assistant_payload([{"type": "text", "text": "Done."}], response="msg_2"))
        recorder.record({"type": "result", "subtype": "success", "uuid": "result", "num_turns": 2})
        ids.append(make_example(execution).pk)
    return ids


def zip_limit(job: ExportJob) -> int:
    """A file size limit between `job`'s bundle's largest member and the bundle, measured on
    a copy of it: each data file fits, the zip does not (a disk filling up while zipping)."""
    probe = ExportJob.objects.create(
        format=job.format, options=job.options, example_ids=job.example_ids
    )
    assert run_export_job(probe.pk) is not None
    probe.refresh_from_db()
    assert probe.status == JobStatus.SUCCEEDED, probe.error
    with zipfile.ZipFile(exports_dir() / probe.bundle_name) as bundle:
        largest = max(info.file_size for info in bundle.infolist())
    assert largest < probe.size, (largest, probe.size)
    delete_bundle(probe)
    probe.delete()
    return (largest + probe.size) // 2


@pytest.mark.parametrize(("format_name", "where"), [("jsonl", "data"), ("huggingface", "zip")])
def test_an_export_that_fills_the_disk_fails_clearly_leaves_no_half_bundle_and_runs_again(
    settings, tmp_path, admin_user, client, format_name: str, where: str
):
    settings.DATA_DIR = tmp_path / "data"
    ids = noisy_examples(20)  # about 330 KB of tool output
    options = ExportOptions().model_dump()
    job = ExportJob.objects.create(format=format_name, options=options, example_ids=ids)
    limit = 64 * 1024 if where == "data" else zip_limit(job)

    started = time.monotonic()
    output = export_in_subprocess(job.pk, limit)
    took = time.monotonic() - started
    print(f"{format_name} export, file limit {limit} B ({where}): {took:.1f} s: {output}")
    job.refresh_from_db()
    assert (job.status, job.lease_expires_at, job.bundle_name) == (JobStatus.FAILED, None, "")
    assert job.error == "OSError: [Errno 27] File too large"
    assert list(exports_dir().iterdir()) == []  # no half bundle, no temporary files
    client.force_login(admin_user)
    page = client.get(reverse("exports-job-detail", args=[job.pk])).content.decode()
    assert "File too large" in page

    retry_export(job)
    assert run_export_job(job.pk) is not None
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert [p.name for p in exports_dir().iterdir()] == [job.bundle_name]
    assert job.counts["written"] == 20
