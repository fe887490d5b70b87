"""Test settings: the production settings module, with test-only values from the environment."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-" + "x" * 20)
os.environ.setdefault("TRAININGDASH_HTTPS", "0")
os.environ.setdefault("TRAININGDASH_DATA_DIR", tempfile.mkdtemp(prefix="trainingdash-test-"))
# One namespace per test process: parallel runs on one Redis never see each other's queues.
os.environ.setdefault("DRAMATIQ_NAMESPACE", f"trainingdash-test-{os.getpid()}")

from trainingdash.settings import *  # noqa: E402,F403
from trainingdash.settings import DATA_DIR, DATABASES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405

# Worker subprocesses started by tests connect straight to the test database, named here.
if os.environ.get("TRAININGDASH_TEST_DB_NAME"):
    DATABASES["default"]["NAME"] = os.environ["TRAININGDASH_TEST_DB_NAME"]
elif DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not :memory:, so that worker subprocesses can share it.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
