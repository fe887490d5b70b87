"""Operating trainingdash as a new user does: the README's commands as real processes on a fresh
data folder (no REDIS_URL, no DATABASE_URL, no SECRET_KEY, no DEBUG), one owner per data
folder, and no process left behind."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.sessions import FIX_SCRIPT

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"

# Processes of their own on their own data folder: the database engine doesn't matter.
pytestmark = pytest.mark.backend_independent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_env(data: Path, **extra: str) -> dict[str, str]:
    """This machine's environment as a new user's shell has it: none of our settings but the
    data folder (the README's default, ./data, is the checkout's own)."""
    ours = ("REDIS_URL", "DATABASE_URL", "SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE", "PORT")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ours and not k.startswith(("TRAININGDASH_", "DRAMATIQ_"))
    }
    return env | {"TRAININGDASH_DATA_DIR": str(data)} | extra


def redis_servers_in(folder: Path) -> list[int]:
    """Embedded Redis servers working in `folder` (redis-server runs in its db file's folder)."""
    found = []
    for proc in psutil.process_iter(["name", "cwd"]):
        cwd = proc.info["cwd"] or ""
        if proc.info["name"] == "redis-server" and cwd.startswith(str(folder)):
            found.append(proc.pid)
    return found


def health(base: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@contextmanager
def running(data: Path, port: int = 0) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`python3 -m trainingdash run` on `data`, until it answers /healthz with all services up."""
    port = port or free_port()
    log = (data.parent / f"run-{port}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainingdash", "run", "--no-demo", "--worker-threads", "1"],
        cwd=ROOT,
        env=fresh_env(data, PORT=str(port), HOME=str(data.parent / "home")),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        status: tuple[int, dict[str, Any]] = (0, {})
        while time.monotonic() < deadline and proc.poll() is None:
            with suppress(OSError):  # not listening yet
                status = health(base)
            if status[0] == 200:
                break
            time.sleep(0.5)
        assert status[0] == 200, (status, Path(log.name).read_text()[-3000:])
        yield proc, base
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def test_a_second_run_on_the_same_data_folder_is_refused_and_the_first_keeps_serving(tmp_path):
    data = tmp_path / "data"
    with running(data) as (first, base):
        second = subprocess.run(
            [sys.executable, "-m", "trainingdash", "run", "--no-demo"],
            cwd=ROOT,
            env=fresh_env(data, PORT=str(free_port())),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode != 0
        assert f"the data folder {data} is in use" in second.stderr, second.stderr
        assert f"pid {first.pid}, {base}/" in second.stderr, second.stderr
        # Its embedded Redis, database and worker are still the first one's, and all up.
        status, report = health(base)
        assert status == 200, report
        assert report["workers"]["live"] == 1
    assert first.returncode == 0
    assert redis_servers_in(data) == []  # stopping the server stopped its Redis
    # Nothing of it lives outside its data folder: no per-user gunicorn control socket, which a
    # run on another data folder would take over.
    assert not (tmp_path / "home" / ".gunicorn").exists()
    # A run that ended leaves the folder to the next one.
    with running(data):
        pass


def processes_of_run_in(data: Path) -> list[psutil.Process]:
    """Every process of a run on `data`: each inherits its TRAININGDASH_DATA_DIR (the embedded
    Redis server included)."""
    found = []
    for proc in psutil.process_iter():
        with suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            if proc.environ().get("TRAININGDASH_DATA_DIR") == str(data):
                found.append(proc)
    return found


def test_a_killed_run_leaves_no_process_behind_and_the_next_run_gets_its_folder_and_port(
    tmp_path,
):
    data = tmp_path / "data"
    port = free_port()
    with running(data, port) as (first, _):
        started = psutil.Process(first.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in started)
        assert "gunicorn" in names and "dramatiq" in names, names
        assert len(redis_servers_in(data)) == 1
        assert {p.pid for p in processes_of_run_in(data)} >= {p.pid for p in started}
        first.kill()  # SIGKILL: nothing of its own clean-up runs
        first.wait()
        # Its web app and worker are told by the kernel, its reaper stops the embedded Redis.
        _gone, alive = psutil.wait_procs(started, timeout=60)
        assert alive == [], [p.cmdline() for p in alive]
        deadline = time.monotonic() + 30
        while (left := processes_of_run_in(data)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert left == [], [p.cmdline() for p in left]
    assert redis_servers_in(data) == []
    with running(data, port) as (second, base):
        assert base == f"http://127.0.0.1:{port}"
        status, report = health(base)
        assert status == 200, report
        assert report["workers"]["live"] == 1
    # A clean stop waits for its own processes.
    assert second.returncode == 0
    assert processes_of_run_in(data) == []


def _checkout_like(tmp_path: Path) -> Path:
    """A folder to run the README's commands in as written: `.venv` and `manage.py` of this
    checkout, plus the files they name (fix.json, path/to/repo, logs/*.ndjson)."""
    cwd = tmp_path / "checkout"
    cwd.mkdir()
    (cwd / ".venv").symlink_to(ROOT / ".venv")
    (cwd / "manage.py").symlink_to(ROOT / "manage.py")
    repo = cwd / "path" / "to" / "repo"
    repo.mkdir(parents=True)
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (repo / "test_calc.py").write_text(
        "from calc import add\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    (cwd / "fix.json").write_text(json.dumps(FIX_SCRIPT))
    (cwd / "logs").mkdir()
    (cwd / "logs" / "session.ndjson").write_bytes(
        (FIXTURES / "gleam__basic_query.ndjson").read_bytes()
    )
    projects = tmp_path / "home" / ".claude" / "projects" / "demo"
    projects.mkdir(parents=True)
    (projects / "short.jsonl").write_bytes((FIXTURES / "spotter__short.jsonl").read_bytes())
    return cwd


# The README's shell commands besides `run` and `test`, as written there.
README_COMMANDS = [
    ".venv/bin/python manage.py collect "
    '--name "Fix add" --category debugging --difficulty easy \\\n'
    '    --prompt "Fix the failing test" --policy script --script fix.json \\\n'
    '    --workspace path/to/repo --verifier "python3 -m pytest -q"',
    ".venv/bin/python manage.py generate --examples-per-category 1 --categories debugging "
    "--difficulties easy --no-chains --no-multi-agent --concurrency 1",
    ".venv/bin/python manage.py import_sessions ~/.claude/projects 'logs/*.ndjson'",
    '.venv/bin/python manage.py shell -c "from django.contrib.auth.models import User; '
    "from collection.roles import assign_role; "
    "assign_role(User.objects.get(username='alice'), 'reviewer')\"",
]


def test_the_readme_gives_these_commands_as_written():
    readme = (ROOT / "README.md").read_text()
    missing = [command for command in README_COMMANDS if command not in readme]
    assert missing == []


def test_the_readmes_commands_work_as_written_right_after_run(tmp_path):
    data = tmp_path / "data"
    cwd = _checkout_like(tmp_path)
    env = fresh_env(data, HOME=str(tmp_path / "home"))
    with running(data) as (_, base):
        key = data / "secret_key"
        assert key.stat().st_mode & 0o777 == 0o600
        assert len(key.read_text().strip()) >= 50
        add_alice = (
            '.venv/bin/python manage.py shell -c "from django.contrib.auth.models import User; '
            "User.objects.create_user('alice')\""
        )
        for command in [add_alice, *README_COMMANDS]:
            done = subprocess.run(
                ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        # The commands used the server's embedded Redis without stopping it.
        status, report = health(base)
        assert status == 200, report
        check = (
            "from collection.models import Execution, TrainingExample; "
            "from django.contrib.auth.models import User; "
            "print(Execution.objects.count(), TrainingExample.objects.count(), "
            "User.objects.get(username='alice').groups.get().name)"
        )
        counts = subprocess.run(
            [".venv/bin/python", "manage.py", "shell", "-c", check],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        # collect 1, generate 1, two imported sessions; alice is a reviewer.
        assert counts[-3:] == ["4", "4", "reviewer"], counts
    assert redis_servers_in(data) == []


def test_generate_stops_the_embedded_redis_it_started(tmp_path):
    data = tmp_path / "data"
    env = fresh_env(data, SECRET_KEY=secrets.token_urlsafe(50))
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    for _ in range(2):
        done = subprocess.run(
            [
                *manage,
                "generate",
                "--examples-per-category",
                "1",
                "--categories",
                "debugging",
                "--difficulties",
                "easy",
                "--no-chains",
                "--no-multi-agent",
                "--concurrency",
                "1",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "1 examples" in done.stdout
        assert (data / "redis").is_dir()  # it did run on the embedded Redis
        assert redis_servers_in(data) == [], "generate left its Redis server running"


def test_a_script_on_the_embedded_redis_killed_with_sigterm_stops_it(tmp_path):
    """`timeout`, a service manager or `kill` end a script with SIGTERM: its exit hooks still run,
    so the embedded Redis it started does not outlive it."""
    data = tmp_path / "data"
    script = (
        "import django, sys, time; django.setup()\n"
        "from trainingdash.broker import setup_broker\n"
        "setup_broker().client.ping()\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    env = fresh_env(data, SECRET_KEY=secrets.token_urlsafe(50))
    env["DJANGO_SETTINGS_MODULE"] = "trainingdash.settings"
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert len(redis_servers_in(data)) == 1
        proc.terminate()
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert redis_servers_in(data) == [], "the killed script left its Redis server running"


def test_no_command_is_no_server_but_the_usage(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "trainingdash"],
        cwd=ROOT,
        env=fresh_env(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "usage:" in done.stderr
    assert "python3 -m trainingdash run" in done.stderr
    assert not (tmp_path / "data").exists()  # nothing was set up


WEAK_KEYS = {
    "short": "s3cr3t-but-short",
    "repetitive": "a" * 30 + "b" * 30,
    "startproject placeholder": "django-insecure-" + secrets.token_urlsafe(50),
}


@pytest.mark.parametrize("key", WEAK_KEYS.values(), ids=WEAK_KEYS.keys())
@pytest.mark.parametrize("command", ["check", "up"])
def test_outside_debug_a_weak_secret_key_is_refused(tmp_path, key, command):
    done = subprocess.run(
        [sys.executable, "manage.py", command],
        cwd=ROOT,
        env=fresh_env(tmp_path, SECRET_KEY=key, PORT=str(free_port())),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "SECRET_KEY is weak" in done.stderr, done.stderr[-2000:]
    assert redis_servers_in(tmp_path) == []


def test_debug_accepts_any_key_and_the_key_file_stands_in_for_the_environment(tmp_path):
    def check(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "check"],
            cwd=ROOT,
            env=fresh_env(tmp_path, **env),
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert check(DEBUG="1", SECRET_KEY="short").returncode == 0
    missing = check()
    assert missing.returncode != 0
    assert "SECRET_KEY must be set" in missing.stderr
    assert str(tmp_path / "secret_key") in missing.stderr  # says where `run` keeps one
    (tmp_path / "secret_key").write_text(secrets.token_urlsafe(50) + "\n")
    assert check().returncode == 0
    (tmp_path / "secret_key").write_text("changeme\n")
    assert "SECRET_KEY is weak" in check().stderr


def test_an_outage_found_outside_a_view_gets_the_page_naming_it(rf):
    """`trainingdash.http.server_error` as handler500: the session middleware reading a
    database that is down is a 503 naming the database; any other error Django's 500 page."""
    from django.db import OperationalError

    from trainingdash.http import server_error

    try:
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed')
    except OperationalError:
        outage = server_error(rf.get("/"))
    assert outage.status_code == 503
    assert b"The database is not answering" in outage.content
    assert b"5432" not in outage.content
    try:
        raise ValueError("a bug")
    except ValueError:
        bug = server_error(rf.get("/"))
    assert bug.status_code == 500
    assert b"Something went wrong" in bug.content
