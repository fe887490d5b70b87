"""Faults against real processes and services: each job reaches exactly one final state.

Workers are real `dramatiq` processes on a real Redis (tests/test_broker.py) that only the
reconciler revives (tests/test_reconciler.py); sessions run the bundled CLI against the
scripted model. Times are printed (`-s`) for the closing note, never asserted tightly.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse

from collection.jobs import dead_letters as dead_letters_module
from collection.jobs.runner import LEASE_LOST_LOG, create_job, sandboxes_dir
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
from tests.services import port_open, require
from tests.sessions import SLOW_FIX, VERIFIER, fix_spec, make_workspace
from tests.test_broker import (
    ROOT,
    start_fix,
    start_slow_fix,
    start_worker,
    stop_worker,
    wait_for,
    worker_env,
)
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
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue  # it exited meanwhile
        if int(fields[2]) == worker.pid and b"_bundled/claude" in cmdline:
            parents[int(stat.parent.name)] = int(fields[1])
    # Not the CLI's own helpers (a child it starts from its own binary, for a moment).
    return [pid for pid, parent in parents.items() if parent not in parents]


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
    said = "the Claude Code CLI was stopped by SIGTERM (exit code 143)"  # 128 + SIGTERM
    assert job.error == said
    (execution,) = Execution.objects.all()
    assert execution.status == TaskStatus.FAILED and execution.is_partial
    assert "exit code 143" in execution.error and execution.success is False
    assert_stored_once(execution, result=False)  # it never got to its result
    client.force_login(admin_user)
    page = client.get(reverse("collection-job-detail", args=[job.pk])).content.decode()
    assert said in page


# --- a worker paused past its lease -------------------------------------------------------------


def test_a_worker_paused_past_its_lease_leaves_the_job_to_the_worker_that_took_it_over(
    redis_broker, tmp_path
):
    # Its Bash step long enough for the paused worker to wake and give up while the worker
    # that took the job over is still in its own.
    first, job = start_fix(tmp_path, RECONCILING, script=PAUSABLE_FIX)
    (stale_call,) = Execution.objects.get().tool_calls.filter(name="Bash")
    os.killpg(first.pid, signal.SIGSTOP)  # the worker and its CLI, mid-Bash (a VM paused, ^Z)
    first_lines = read_lines(first)
    second = start_worker(**RECONCILING)
    try:
        taken = wait_for(lambda: _in_bash_step(job, attempt=2), 90)
        os.killpg(first.pid, signal.SIGCONT)
        # The paused worker wakes, finds its lease gone and ends its attempt.
        gave_up = wait_for(lambda: any(LEASE_LOST_LOG in line for line in first_lines), 60)
        execution = Execution.objects.get()
        job.refresh_from_db()
        done = wait_for(lambda: CollectionJob.objects.get(pk=job.pk).is_finished, 90)
    finally:
        second_output = stop_worker(second)
        stop_worker(first)
    output = "".join(first_lines) + second_output
    assert taken and gave_up and done, output
    # Meanwhile the execution was the new attempt's alone: open, nothing of the old one in it.
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 2), "the second ended too soon"
    assert (execution.status, execution.error) == (TaskStatus.IN_PROGRESS, ""), output
    job.refresh_from_db()
    assert (job.status, job.attempts, job.lease_expires_at) == (JobStatus.SUCCEEDED, 2, None)
    (execution,) = Execution.objects.all()
    assert execution.status == TaskStatus.COMPLETED and execution.success, execution.error
    assert not execution.is_partial and execution.error == ""
    assert execution.metadata["interrupted_attempts"] == 1
    assert_stored_once(execution)
    stale = execution.messages.filter(payload__icontains=stale_call.tool_use_id)
    assert not stale.exists()  # the old attempt's Bash result, written after it woke: none
    assert execution.training_example.is_golden
    assert dead_letters(redis_broker) == 0


PAUSABLE_FIX = [
    *SLOW_FIX[:3],
    {"tool": "Bash", "input": {"command": f"sleep 15; {VERIFIER}"}},
    SLOW_FIX[-1],
]


def read_lines(proc: subprocess.Popen[str]) -> list[str]:
    """`proc`'s output lines as they come (a thread reads them; `stop_worker` gets the rest)."""
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _in_bash_step(job: CollectionJob, attempt: int) -> bool:
    job.refresh_from_db()
    bash = Execution.objects.filter(job__pk=job.pk, tool_calls__name="Bash")
    return job.attempts == attempt and bash.exists()


# --- the CLI hanging ----------------------------------------------------------------------------


def test_a_hung_cli_is_killed_at_the_time_limit_and_its_job_fails_once(
    redis_broker, tmp_path, admin_user, client
):
    worker, job = start_fix(tmp_path, RECONCILING, timeout_s=20)
    try:
        (cli,) = session_clis(worker)
        os.kill(cli, signal.SIGSTOP)  # the CLI hangs: it answers nothing, not even SIGTERM
        stopped = time.monotonic()
        done = wait_for(lambda: CollectionJob.objects.get(pk=job.pk).is_finished, 90)
        took = time.monotonic() - stopped
        left = session_clis(worker)
        # A reconciler pass after the end (it removes a decoy sandbox): it runs nothing again.
        decoy = sandboxes_dir() / f"job-{job.pk}-attempt-99"
        decoy.mkdir(parents=True)
        passes = wait_for(lambda: not decoy.exists(), 30)
    finally:
        output = stop_worker(worker)
    assert done and passes, output
    print(f"hung CLI: the job failed {took:.1f} s after the CLI stopped (time limit 20 s)")
    assert left == [] and not _alive(cli)
    job.refresh_from_db()
    assert (job.status, job.attempts, job.lease_expires_at) == (JobStatus.FAILED, 1, None)
    assert job.error == "timed out after 20s"
    (execution,) = Execution.objects.all()
    assert execution.status == TaskStatus.FAILED and execution.is_partial
    assert execution.error == "timed out after 20s" and execution.success is False
    assert execution.tool_calls.count() == 3  # Read, Edit and the Bash it hung in, once each
    client.force_login(admin_user)
    page = client.get(reverse("collection-job-detail", args=[job.pk])).content.decode()
    assert "timed out after 20s" in page


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- PostgreSQL restarted under load -------------------------------------------------------------

PG_BIN = Path("/usr/local/bin")


@pytest.fixture
def private_postgres() -> Iterator[tuple[str, Callable[[], float]]]:
    """A PostgreSQL cluster of our own on a free port (its URL), and a way to restart it
    (`pg_ctl restart -m fast`: sessions cut, as a failover or an upgrade does); how long the
    restart took. Run as `nobody` when we are root: initdb refuses root."""
    require("PostgreSQL", (PG_BIN / "initdb").exists(), f"no initdb in {PG_BIN}")
    folder = Path(tempfile.mkdtemp(prefix="h2-pg-"))
    folder.chmod(0o755)
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "nobody")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data, log = folder / "data", folder / "log"

    def pg(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    pg(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")

    def restart() -> float:
        began = time.monotonic()
        pg(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-m", "fast", "-w", "restart")
        return time.monotonic() - began

    try:
        yield f"postgres://postgres@127.0.0.1:{port}/postgres", restart
    finally:
        subprocess.run(
            [*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


MAKE_BATCH = """
import json, sys
from pathlib import Path
import django
django.setup()
from collection.jobs.batches import GenerationParams, dispatch
from collection.models import CollectionJob, GenerationBatch
from tests.factories import make_task
from tests.sessions import SLOW_FIX, fix_spec, make_workspace

root, n = Path(sys.argv[1]), int(sys.argv[2])
params = GenerationParams(seed=1, concurrency=n, categories=["debugging"], examples_per_category=n)
batch = GenerationBatch.objects.create(name="restart", params=params.model_dump(mode="json"))
batch.acquire()
for k in range(n):
    spec = fix_spec(make_workspace(root / f"ws{k}"), script=SLOW_FIX).model_dump(mode="json")
    CollectionJob.objects.create(task=make_task(), spec=spec, batch=batch, plan_key=f"job-{k}")
print(json.dumps({"batch": batch.pk, "sent": dispatch(batch)}))
"""

SUMMARY = """
import json
import django
django.setup()
from collection.models import CollectionJob, Execution, GenerationBatch, TrainingExample

jobs = []
for job in CollectionJob.objects.order_by("pk"):
    execution = job.execution
    messages = execution.messages.exclude(uuid="") if execution else []
    uuids = [m.uuid for m in messages]
    jobs.append({
        "status": job.status, "attempts": job.attempts, "error": job.error,
        "execution": execution.status if execution else None,
        "success": execution.success if execution else None,
        "tools": list(execution.tool_calls.values_list("name", flat=True)) if execution else [],
        "results": execution.messages.filter(type="result").count() if execution else 0,
        "unique_uuids": len(uuids) == len(set(uuids)),
        "interrupted": execution.metadata.get("interrupted_attempts", 0) if execution else None,
    })
print(json.dumps({
    "jobs": jobs,
    "executions": Execution.objects.count(),
    "examples": TrainingExample.objects.count(),
    "batches": list(GenerationBatch.objects.values_list("status", flat=True)),
}))
"""


def probe_healthz(url: str, stop: threading.Event) -> list[int]:
    """GET `url` every 0.1 s until `stop`; the status codes, as they come (a thread's)."""
    codes: list[int] = []

    def probe() -> None:
        while not stop.wait(0.1):
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    codes.append(response.status)
            except urllib.error.HTTPError as exc:
                codes.append(exc.code)
            except OSError:
                codes.append(0)  # no answer at all

    threading.Thread(target=probe, daemon=True).start()
    return codes


def run_script(script: str, env: dict[str, str], *args: str) -> str:
    run = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_postgresql_restarted_mid_batch_loses_and_repeats_nothing(
    redis_broker, private_postgres, tmp_path
):
    import psycopg

    url, restart = private_postgres
    env = worker_env() | {"DATABASE_URL": url, "TRAININGDASH_TEST_DB_NAME": ""}
    run_script(
        "from django.core.management import call_command as c; import django; "
        "django.setup(); c('migrate', verbosity=0)",
        env,
    )
    jobs = 4
    made = json.loads(run_script(MAKE_BATCH, env, str(tmp_path), str(jobs)))
    assert made["sent"] == jobs

    def in_bash() -> int:
        with psycopg.connect(url) as conn:
            sql = "SELECT count(DISTINCT execution_id) FROM collection_toolcall WHERE name = 'Bash'"
            (count,) = conn.execute(sql).fetchone() or (0,)
            return int(count)

    def final() -> int:
        with psycopg.connect(url) as conn:
            sql = "SELECT count(*) FROM collection_collectionjob WHERE status = ANY(%s)"
            (count,) = conn.execute(sql, [["succeeded", "failed", "cancelled"]]).fetchone() or (0,)
            return int(count)

    workers = [start_worker(**RECONCILING, **pg_env(url)) for _ in range(2)]
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        web_port = free.getsockname()[1]
    web = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{web_port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stop = threading.Event()
    try:
        assert wait_for(lambda: port_open("127.0.0.1", web_port), 30)
        codes = probe_healthz(f"http://127.0.0.1:{web_port}/healthz", stop)
        mid_batch = wait_for(lambda: in_bash() == jobs, 90)
        restarted_at = time.monotonic()
        took = restart()
        done = wait_for(lambda: final() == jobs, 180)
        recovered = wait_for(lambda: codes[-1:] == [200], 30)
        finished_at = time.monotonic()
    finally:
        stop.set()
        web.kill()
        web.wait()
        outputs = [stop_worker(worker) for worker in workers]
    output = "\n".join(outputs)
    assert mid_batch and done and recovered, f"{output}\n{codes}"
    ended = finished_at - restarted_at
    print(f"PostgreSQL restart took {took:.1f} s; the batch ended {ended:.1f} s after it began")
    assert 200 in codes and 503 in codes, codes  # /healthz said so during the outage
    summary = json.loads(run_script(SUMMARY, env))
    print(summary)
    for job in summary["jobs"]:
        assert job["status"] == "succeeded", (job, output)
        assert job["execution"] == "completed" and job["success"], job
        assert job["tools"] == ["Read", "Edit", "Bash"] and job["results"] == 1, job
        assert job["unique_uuids"], job
        # A session the restart cut short ran again once, and its execution says so.
        assert job["attempts"] <= 2 and job["interrupted"] == job["attempts"] - 1, job
    assert summary["executions"] == summary["examples"] == jobs
    assert summary["batches"] == ["succeeded"]


def pg_env(url: str) -> dict[str, str]:
    return {"DATABASE_URL": url, "TRAININGDASH_TEST_DB_NAME": ""}


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

    # The dead letters, with the error that killed each, on the jobs page.
    found = dead_letters_module.read()
    assert found.count == 2 and found.problem == ""
    by_args = {letter.args: letter for letter in found.recent}
    assert set(by_args) == {'["not-an-id"]', "[]"}
    assert {letter.actor for letter in found.recent} == {actor}
    assert by_args['["not-an-id"]'].error.startswith("ValueError: Field 'id' expected a number")
    assert by_args["[]"].error.startswith("TypeError: ") and "job_id" in by_args["[]"].error
    assert all(abs(time.time() - letter.at.timestamp()) < 600 for letter in found.recent)
    listing = client.get(reverse("collection-job-list")).content.decode()
    assert "2 queue messages" in listing
    assert "[&quot;not-an-id&quot;]" in listing and "run_collection_job" in listing
    assert "ValueError: Field &#x27;id&#x27; expected a number" in listing
    assert by_args["[]"].at.strftime("%Y-%m-%d %H:%M:%S") in listing


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
