"""Fresh-machine entry point, standard library only.

usage:
    python3 -m trainingdash run [--no-demo] [--worker-threads N]
        venv, install, migrate, first admin, then the web app and a worker (Ctrl-C stops both)
    python3 -m trainingdash test [PYTEST ARGS]
        venv, install (with test extras), browser, type checks and the test suite

Both create `.venv` beside this project on first use and re-run inside it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("TRAININGDASH_VENV", ROOT / ".venv"))
PY = VENV / "bin" / "python"


def _sh(*cmd: str | Path, **kw) -> None:
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def ensure_venv(extras: str) -> None:
    """Create the venv and install the project when pyproject.toml changed since last time."""
    if sys.version_info[:2] != (3, 11):
        raise SystemExit(f"trainingdash needs Python 3.11, this is {sys.version.split()[0]}")
    if not PY.exists():
        _sh(sys.executable, "-m", "venv", VENV)
        _sh(PY, "-m", "pip", "install", "-q", "--upgrade", "pip")
    stamp = VENV / f".installed-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    # The test extras include the base install: `run` after `test` installs nothing.
    done = [stamp, VENV / ".installed-test"] if not extras else [stamp]
    if not any(s.exists() and s.read_text() == digest for s in done):
        target = f"{ROOT}[{extras}]" if extras else str(ROOT)
        _sh(PY, "-m", "pip", "install", "-q", "-e", target)
        stamp.write_text(digest)


def ensure_chromium() -> None:
    """The browser tests use Debian's chromium (no browser downloads here)."""
    if shutil.which("chromium"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("browser tests need chromium: install Debian's 'chromium' package")
    _sh("apt-get", "update", "-qq")
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", env=apt_env)


def local_env() -> dict[str, str]:
    """Settings for a single-machine run: data dir, persistent secret key, plain http.

    The key stays in the data folder (mode 0600), not in the environment: the settings read it
    there, so the README's `manage.py` commands sign with the same key, and the sessions' tools
    (which inherit the environment) never see it."""
    data = Path(os.environ.get("TRAININGDASH_DATA_DIR") or ROOT / "data").resolve()
    data.mkdir(parents=True, exist_ok=True)
    key_file = data / "secret_key"
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(50) + "\n")
    env = {"TRAININGDASH_DATA_DIR": str(data), "TRAININGDASH_HTTPS": "0"}
    return {**env, **os.environ}


def _reachable(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def run_tests(args: list[str]) -> int:
    """Type checks (mypy with django-stubs), then the suite on SQLite, then again on PostgreSQL
    (without the browser tests and those marked backend_independent: once is enough for them).

    Redis and PostgreSQL on 127.0.0.1 are used when they run there, and required when CI=true.
    """
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    env = dict(os.environ)
    if "REDIS_URL" not in env and (ci or _reachable("127.0.0.1", 6379)):
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    env.pop("DATABASE_URL", None)
    typed = subprocess.run([str(PY), "-m", "mypy"], cwd=ROOT, env=env).returncode
    pytest = [str(PY), "-m", "pytest", *args]
    status = subprocess.run(pytest, cwd=ROOT, env=env).returncode or typed
    pg_url = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
    if not (ci or _reachable("127.0.0.1", 5432)):
        print("PostgreSQL is not running on 127.0.0.1:5432: the PostgreSQL pass is left out.")
        return status
    pg_env = env | {"DATABASE_URL": pg_url, "TRAININGDASH_EXPECT_DB_VENDOR": "postgresql"}
    pg_status = subprocess.run(
        [*pytest, "-m", "not e2e and not backend_independent"], cwd=ROOT, env=pg_env
    ).returncode
    return status or pg_status


def main(argv: list[str]) -> None:
    command = argv[0] if argv else ""
    if command in {"-h", "--help", "help"}:
        print(__doc__)
        return
    if command == "run":
        ensure_venv("")
        os.execve(PY, [str(PY), str(ROOT / "manage.py"), "up", *argv[1:]], local_env())
    elif command == "test":
        ensure_venv("test")
        ensure_chromium()
        raise SystemExit(run_tests(argv[1:]))
    else:
        # No command is no default either: say what there is, and fail.
        raise SystemExit((f"unknown command {command!r}\n" if command else "") + __doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
