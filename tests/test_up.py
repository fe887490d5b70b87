"""The README's run command, minus venv creation: `manage.py up` on a fresh data dir."""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_up_starts_web_and_worker_on_embedded_services_and_seeds_a_demo(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env |= {
        "DJANGO_SETTINGS_MODULE": "trainingdash.settings",
        "TRAININGDASH_DATA_DIR": str(tmp_path),
        "SECRET_KEY": "up-test-" + "s" * 50,
        "TRAININGDASH_HTTPS": "0",
        "PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--worker-threads", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = "".join(proc.stdout.readline() for _ in range(3))
        assert "log in as 'admin'" in banner, banner
        password = re.search(r"password: (\S+)", banner).group(1)
        assert (tmp_path / "admin-password.txt").read_text().strip() == password
        assert (tmp_path / "trainingdash.sqlite3").exists()

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        base = f"http://127.0.0.1:{port}"
        login_page = _retry(lambda: opener.open(base + "/accounts/login/").read().decode())
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page).group(1)
        form = urllib.parse.urlencode(
            {"username": "admin", "password": password, "csrfmiddlewaretoken": token}
        ).encode()
        dashboard = opener.open(base + "/accounts/login/", form).read().decode()
        assert "<h1>Dashboard</h1>" in dashboard
        # The first start seeds a demo dataset: real scripted trajectories appear.
        deadline = time.monotonic() + 240
        while _examples_shown(dashboard) < 6 and time.monotonic() < deadline:
            time.sleep(2)
            dashboard = opener.open(base + "/").read().decode()
        assert _examples_shown(dashboard) >= 6, dashboard[-3000:]
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert "Worker process is ready" in output, output
    assert "seeding a demo dataset" in banner + output


def _examples_shown(dashboard: str) -> int:
    return int(re.search(r'id="stat-examples">(\d+)<', dashboard).group(1))


def _retry(fn, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
