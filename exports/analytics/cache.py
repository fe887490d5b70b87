"""Computed analytics, cached per snapshot version and filters, shared by every web process.

    analytics = cached_analytics(filters)             # the page: never waits when it can serve
    analytics.stale                                   # True: older figures, newer ones coming
    analytics = cached_analytics(filters, wait=True)  # the Refresh link, small snapshots

Why: at 1M examples the engine's twelve aggregates take 4-6 s of CPU per request (DuckDB over
the whole snapshot), and eight clients queue behind each other on two CPUs. The figures only
change when the snapshot's version does (`snapshot.read_state`: a refresh that found nothing
new keeps the version and only moves `as_of`), so one computation per (version, filters) is
enough for every process.

Where: `<snapshot dir>/results/<key>-<version>.json`, written beside and moved into place (a
reader sees a whole file or none). `key` is a hash of the filters (the sort left out: it
changes no figure) and of everything else the figures depend on (the calibration's target pass
rates, the golden threshold, the snapshot's schema); the file holds those in full too, and is
served only when they are equal, so a result never answers other filters.

Single flight: computing a key takes `results/<key>.lock` (flock). A request that finds a result
of the current version serves it. One that finds only an older result for the same filters
serves it at once, saying how old it is (its own `as_of`: the figures and the date agree), and
starts the computation in a thread unless another process or thread holds the key's lock.
Only a request that finds no result at all for its filters (or asks to wait) waits on the lock,
then serves what the process that held it wrote.

Cap: writing a result removes the other versions of the same key (older ones; newer ones can
only be left by a snapshot rebuilt from scratch, whose versions start again), and the oldest
files once there are more than `KEEP`. A corrupt or unreadable file counts as missing and is
rewritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from collection import calibration
from collection.queries import ExampleFilters
from exports.analytics.engine import Analytics, Table, compute
from exports.analytics.snapshot import SCHEMA_VERSION, as_of, read_state, snapshot_dir

logger = logging.getLogger(__name__)

# Imported here, in the importing thread, before any background thread runs: DuckDB's
# `register` imports pandas in a refresh or computation thread, and plotly (building the page's
# charts in the request thread) would otherwise pick up the half-imported module from
# sys.modules ("partially initialized module 'pandas' has no attribute 'Series'").
with contextlib.suppress(ImportError):  # without pandas neither imports it
    import pandas  # noqa: F401

FORMAT = 1
KEEP = 200  # result files kept in all (every filter combination, their newest versions)
FOLDER = "results"

_guard = threading.Lock()
_running: dict[tuple[Path, str], threading.Thread] = {}


class Busy(Exception):
    """Another process or thread is computing this key."""


def cached_analytics(
    filters: ExampleFilters | None = None, *, directory: Path | None = None, wait: bool = False
) -> Analytics:
    """The analytics of the snapshot as it is, computed once per version and filters.

    Without `wait`, a result of an older version for the same filters is served at once
    (`stale`, with its own `as_of`) while the current one is computed in the background."""
    directory = directory or snapshot_dir()
    filters = filters or ExampleFilters()
    state = read_state(directory)
    if state is None:  # no snapshot: nothing to key a result on
        return compute(filters, directory, state)
    material = key_material(filters)
    key = _key(material)
    folder = directory / FOLDER
    found = _newest(folder, key, material)
    if found is not None and (found.version or 0) > state["version"]:
        state = read_state(directory) or state  # a refresh ended in between
    if found is not None and found.version == state["version"]:
        return _served(found, filters, state)
    if found is not None and (found.version or 0) < state["version"] and not wait:
        start_computing(directory, filters)
        return replace(found, filters=filters, stale=True)
    # No result for these filters yet (or a newer one than the snapshot: it was rebuilt).
    with _key_lock(folder, key, wait=True):
        state = read_state(directory) or state  # the newest, now that it is our turn
        found = _newest(folder, key, material)
        if found is not None and found.version == state["version"]:
            return _served(found, filters, state)
        return _compute_and_store(directory, filters, state)


def start_computing(directory: Path, filters: ExampleFilters) -> bool:
    """Compute the current version's result for `filters` in a thread of this process, unless
    one of its threads already is; another process computing it makes the thread do nothing."""
    key = _key(key_material(filters))
    with _guard:
        if (directory, key) in _running:
            return True
        thread = threading.Thread(
            target=_background, args=(directory, filters), name="analytics-compute", daemon=True
        )
        _running[(directory, key)] = thread
    thread.start()
    return True


def wait_for_computations(timeout: float | None = None) -> None:
    """Join this process's background computations (tests, and a clean shutdown)."""
    with _guard:
        threads = list(_running.values())
    for thread in threads:
        thread.join(timeout)


def computing() -> bool:
    with _guard:
        return bool(_running)


def key_material(filters: ExampleFilters) -> dict[str, Any]:
    """Everything the figures depend on besides the snapshot's data."""
    targets = calibration.current().pass_rate
    return {
        "format": FORMAT,
        "schema": SCHEMA_VERSION,
        "filters": filters.model_dump(mode="json", exclude={"sort"}),
        "targets": {str(getattr(k, "value", k)): v for k, v in sorted(targets.items())},
        "golden_threshold": float(settings.TRAININGDASH_SCORING["golden_threshold"]),
    }


def _key(material: dict[str, Any]) -> str:
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _served(found: Analytics, filters: ExampleFilters, state: dict[str, Any]) -> Analytics:
    """A result of the current version: the data is the same as the state's, which may have
    been read later (a refresh that found nothing new keeps the version, moves `as_of`)."""
    newest = found.as_of
    if (state_as_of := as_of(state)) is not None:
        newest = max(newest, state_as_of) if newest else state_as_of
    return replace(found, filters=filters, as_of=newest, stale=False)


def _background(directory: Path, filters: ExampleFilters) -> None:
    key = _key(key_material(filters))
    try:
        material = key_material(filters)
        folder = directory / FOLDER
        with _key_lock(folder, key, wait=False):
            state = read_state(directory)
            if state is None:
                return
            found = _newest(folder, key, material)
            if found is None or found.version != state["version"]:
                _compute_and_store(directory, filters, state)
    except Busy:
        pass  # another process computes it: a reload will show it
    except Exception:  # a background thread has no one to raise to: the next load retries
        logger.exception("analytics computation failed (%s)", directory)
    finally:
        connection.close()  # this thread's own database connection (a search `q` uses it)
        with _guard:
            _running.pop((directory, key), None)


def _compute_and_store(
    directory: Path, filters: ExampleFilters, state: dict[str, Any]
) -> Analytics:
    analytics = compute(filters, directory, state)
    material = key_material(filters)
    folder = directory / FOLDER
    try:
        _write(folder, _key(material), material, analytics)
    except (OSError, TypeError, ValueError):  # cannot cache: still answer
        logger.exception("analytics result not cached (%s)", folder)
    return analytics


# --- the files --------------------------------------------------------------------------------


@contextmanager
def _key_lock(folder: Path, key: str, *, wait: bool) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{key}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as exc:
            raise Busy(key) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _versions(folder: Path, key: str) -> list[tuple[int, Path]]:
    found = []
    for path in folder.glob(f"{key}-*.json"):
        version = path.stem.rsplit("-", 1)[1]
        if version.isdigit():
            found.append((int(version), path))
    return sorted(found, reverse=True)


def _newest(folder: Path, key: str, material: dict[str, Any]) -> Analytics | None:
    """The newest readable result for these filters (a corrupt file is passed over)."""
    for version, path in _versions(folder, key):
        analytics = _read(path, material, version)
        if analytics is not None:
            return analytics
    return None


def _read(path: Path, material: dict[str, Any], version: int) -> Analytics | None:
    try:
        data = json.loads(path.read_text(), object_hook=_decode)
        if data["material"] != material or data["version"] != version:
            return None  # another key's (a hash collision) or a renamed file: never served
        tables = {
            t["name"]: Table(
                t["name"], t["title"], t["columns"], [tuple(r) for r in t["rows"]], t["links"]
            )
            for t in data["tables"]
        }
        when = data["as_of"]
        if when is not None and not isinstance(when, datetime):
            raise TypeError("as_of")
        return Analytics(data["summary"], tables, ExampleFilters(), when, version)
    except FileNotFoundError:
        return None  # removed by a newer result's writer
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
        logger.warning("ignoring an unreadable analytics result %s", path)
        return None


def _write(folder: Path, key: str, material: dict[str, Any], analytics: Analytics) -> None:
    if analytics.version is None:
        return
    data = {
        "material": material,
        "version": analytics.version,
        "as_of": analytics.as_of,
        "summary": analytics.summary,
        "tables": [
            {
                "name": t.name,
                "title": t.title,
                "columns": t.columns,
                "rows": t.rows,
                "links": t.links,
            }
            for t in analytics.tables.values()
        ],
    }
    text = json.dumps(data, default=_encode, allow_nan=True)
    path = folder / f"{key}-{analytics.version}.json"
    tmp = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_text(text)
    os.replace(tmp, path)
    for version, other in _versions(folder, key):
        if version != analytics.version:  # older; or newer, of a snapshot since rebuilt
            other.unlink(missing_ok=True)
    _cap(folder)


def _cap(folder: Path) -> None:
    """Keep the newest `KEEP` results; a key left without results loses its lock file."""
    entries = []
    for path in folder.glob("*.json"):
        try:
            entries.append((path.stat().st_mtime, path))
        except FileNotFoundError:
            continue
    entries.sort(reverse=True)
    for _mtime, path in entries[KEEP:]:
        path.unlink(missing_ok=True)
    for lock in folder.glob("*.lock"):
        if not any(folder.glob(f"{lock.stem}-*.json")):
            _remove_idle_lock(lock)


def _remove_idle_lock(lock: Path) -> None:
    try:
        with open(lock) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            lock.unlink(missing_ok=True)
    except (BlockingIOError, FileNotFoundError):
        pass  # in use, or gone


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    raise TypeError(f"cannot cache a {type(value).__name__} in an analytics result")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        ((tag, value),) = obj.items()
        if tag == "$datetime":
            return datetime.fromisoformat(value)
        if tag == "$date":
            return date.fromisoformat(value)
        if tag == "$decimal":
            return Decimal(value)
    return obj
