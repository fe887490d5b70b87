"""Run trainingdash on this machine: migrate, first admin, embedded services, web and worker.

No process outlives this one, however it ends. Ctrl-C or SIGTERM stops the web app and the
worker, then the embedded Redis. A SIGKILL runs none of that, so the kernel tells the web app
and the worker to stop when this process dies (PR_SET_PDEATHSIG: SIGTERM; their own worker
processes follow their masters), and a small reaper process started beside them stops the
embedded Redis once they have left it.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import psutil
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from collection.models import ImportUpload
from collection.roles import ADMIN, assign_role
from trainingdash import data_dir
from trainingdash.broker import (
    BrokerUnavailable,
    embedded_redis,
    send,
    stop_embedded_redis,
)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# How long the reaper waits for the embedded Redis's other users to leave.
REAPER_GRACE_SECONDS = 60.0
# Below _supervise's 20 s: the worker ends its threads itself, or its master's kill orphans it.
WORKER_SHUTDOWN_MS = 15000


def _check_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        if probe.connect_ex((host, port)) == 0:
            raise CommandError(f"{host}:{port} is already in use; set PORT=... to another port")


class Command(BaseCommand):
    help = "Start trainingdash: web app and worker (Ctrl-C stops both)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("TRAININGDASH_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--worker-threads", type=int, default=4)
        parser.add_argument(
            "--setup-only", action="store_true", help="migrate and create the admin, then exit"
        )
        parser.add_argument(
            "--no-demo",
            dest="demo",
            action="store_false",
            help="don't seed a demo dataset into an empty database",
        )

    def handle(
        self, *args, host: str, port: int, worker_threads: int, setup_only: bool, demo: bool, **kw
    ):
        url = f"http://{host}:{port}/"
        try:
            # Held until this process ends: a second run here would share (and, stopping, stop)
            # this one's embedded Redis and write to the same database.
            self._owner = data_dir.claim(Path(settings.DATA_DIR), url)
        except data_dir.DataDirInUse as exc:
            raise CommandError(str(exc)) from None
        if not setup_only:
            _check_port_free(host, port)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self._first_admin(url)
        if setup_only:
            return
        reaper = None
        if not settings.REDIS_URL:
            # Start it here, so that it runs as long as the web app and the worker do (and is
            # stopped after them, unless a command still uses it).
            server = embedded_redis(Path(settings.REDIS_EMBEDDED_DB))
            reaper = _start_reaper(server.pid)
        if demo:
            self._seed_demo()
        if settings.TRAININGDASH_IMPORT_WATCH:
            # The worker follows these folders: one scan now, each re-sending the next.
            send(ImportUpload.queue_name, "watch_imports")
        try:
            self._supervise(
                {"dramatiq": self._worker(worker_threads), "gunicorn": self._web(host, port)}
            )
        finally:
            stop_embedded_redis()
            if reaper is not None:  # not needed: this is a clean exit
                reaper.terminate()
                reaper.wait()

    def _first_admin(self, url: str) -> None:
        user_model = get_user_model()
        password_file = Path(settings.DATA_DIR) / "admin-password.txt"
        admin = user_model.objects.filter(is_superuser=True).order_by("pk").first()
        if admin is None:
            password = secrets.token_urlsafe(12)
            admin = user_model.objects.create_superuser("admin", "", password)
            assign_role(admin, ADMIN)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        hint = (
            f"password in {password_file}"
            if password_file.exists()
            else "use the password you set for this account"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"trainingdash: open {url} and log in as '{admin.get_username()}' ({hint})"
            )
        )
        if password_file.exists():
            self.stdout.write(f"  password: {password_file.read_text().strip()}")

    def _seed_demo(self) -> None:
        """First start on an empty database: queue one scripted session per template category."""
        from collection.jobs.batches import GenerationParams, start_batch
        from collection.models import GenerationBatch, TrainingExample

        if TrainingExample.objects.exists() or GenerationBatch.objects.exists():
            return
        # Seed 0: every fresh install shows the same demo sessions.
        demo = GenerationParams(examples_per_category=1, seed=0)
        batch = start_batch(demo, name="demo dataset")
        self.stdout.write(
            f"seeding a demo dataset: {batch.jobs.count()} scripted sessions, one per "
            "category, run by the worker (watch them appear on the dashboard)"
        )

    def _worker(self, threads: int) -> subprocess.Popen[bytes]:
        cmd = [
            sys.executable,
            "-m",
            "dramatiq",
            "trainingdash.worker",
            "--processes",
            "1",
            "--threads",
            str(threads),
            "--worker-shutdown-timeout",
            str(WORKER_SHUTDOWN_MS),
        ]
        return _child(cmd)

    def _web(self, host: str, port: int) -> subprocess.Popen[bytes]:
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "trainingdash.wsgi",
            "--bind",
            f"{host}:{port}",
            "--workers",
            "2",
            "--access-logfile",
            "-",
            # Its control socket would be ~/.gunicorn/gunicorn.ctl, one per user: a second run
            # (another data folder) would take it over, and nothing here uses it.
            "--no-control-socket",
        ]
        return _child(cmd)

    def _supervise(self, named: dict[str, subprocess.Popen[bytes]]) -> None:
        children = list(named.values())
        stopping = False

        def stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.5)
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        if not stopping:
            failed = [name for name, c in named.items() if c.returncode]
            raise SystemExit(f"trainingdash: a process exited unexpectedly: {failed}")


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True).prctl


_PRCTL = _prctl()


def _child(cmd: list[str]) -> subprocess.Popen[bytes]:
    """Start `cmd` so that the kernel sends it SIGTERM when this process dies, however."""
    parent = os.getpid()

    def die_with_parent() -> None:  # runs in the child, between fork and exec
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the line above
            os.kill(os.getpid(), signal.SIGTERM)

    return subprocess.Popen(cmd, preexec_fn=die_with_parent)


def _start_reaper(redis_pid: int | None) -> subprocess.Popen[bytes]:
    """A process that waits for this one to exit, then stops the embedded Redis if no one uses
    it any more (see `reap_embedded_redis`). Its own session: a terminal's Ctrl-C skips it."""
    # The write end is never closed here (nor inherited): the reaper reads EOF when we exit.
    read_end, _write_end = os.pipe()
    code = (
        "import django; django.setup(); "
        "from collection.management.commands.up import reap_embedded_redis; "
        f"reap_embedded_redis({read_end}, {redis_pid or 0})"
    )
    reaper = subprocess.Popen(
        [sys.executable, "-c", code], pass_fds=(read_end,), start_new_session=True
    )
    os.close(read_end)
    return reaper


def reap_embedded_redis(parent_alive: int, redis_pid: int) -> None:
    """When `parent_alive` reads end of file (`up` exited, or was killed), stop the embedded
    Redis server `redis_pid` as its last user, once its other users have left.

    A clean exit has stopped it already; after a SIGKILL the web app and the worker leave
    within seconds (their processes exit without stopping it). A new user that joins in the
    meantime (a command, a new run) keeps it: the last one to leave stops it, as always.
    """
    os.read(parent_alive, 1)
    db_path = Path(settings.REDIS_EMBEDDED_DB)
    deadline = time.monotonic() + REAPER_GRACE_SECONDS
    while _is_running(redis_pid) and time.monotonic() < deadline:
        if _unused(db_path.parent / "users.lock"):
            with suppress(BrokerUnavailable):  # it stopped meanwhile
                embedded_redis(db_path)
                stop_embedded_redis()  # stops it if we are still its only user
        else:
            time.sleep(0.2)


def _is_running(pid: int) -> bool:
    try:
        return pid > 0 and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _unused(users_lock: Path) -> bool:
    """No process holds the embedded Redis's users lock (see `trainingdash.broker`)."""
    with users_lock.open("ab") as users:
        try:
            fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
