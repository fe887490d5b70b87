"""Fresh-machine entry point, standard library only.

    python3 -m trainingdash run    # venv, install, migrate, first admin, web + worker
    python3 -m trainingdash test   # venv, install (with test extras), browser, pytest

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
    if not stamp.exists() or stamp.read_text() != digest:
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
    """Settings for a single-machine run: data dir, persistent secret key, plain http."""
    data = Path(os.environ.get("TRAININGDASH_DATA_DIR", ROOT / "data"))
    data.mkdir(parents=True, exist_ok=True)
    key_file = data / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    env = {"TRAININGDASH_DATA_DIR": str(data), "TRAININGDASH_HTTPS": "0"}
    env.setdefault("SECRET_KEY", key_file.read_text().strip())
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
    command = argv[0] if argv else "run"
    if command == "run":
        ensure_venv("")
        os.execve(PY, [str(PY), str(ROOT / "manage.py"), "up", *argv[1:]], local_env())
    elif command == "test":
        ensure_venv("test")
        ensure_chromium()
        raise SystemExit(run_tests(argv[1:]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
