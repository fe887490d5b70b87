"""Keeping the analytics snapshot fresh without making a page wait for it.

    freshness = keep_fresh()      # the snapshot as it is, a background refresh started if old
    freshness.as_of               # when its data was read; freshness.refreshing
    refresh_now()                 # the Refresh link: this request refreshes, unless another is

A page answers from the snapshot as it is and says how old it is ("data as of 12 s ago"). A
load that finds it older than `MAX_AGE` starts a refresh in a thread of its own process, which
takes the snapshot's lock without waiting (`refresh_snapshot(wait=False)`): when another
process or thread is refreshing, it does nothing. So no request waits for a refresh, and under
steady writes one refresh runs at a time, in whichever web process saw the page first. Only
the first load of all, with no snapshot yet, builds it in the request.

A small snapshot (under `INLINE_BELOW` examples, where an incremental refresh takes a few
milliseconds) is refreshed in the request instead, still without waiting: a page over a small
database is never stale, and a busy lock means it answers as it is.

Why in the web process and not in a worker: the snapshot is files in the data folder of the
machine that reads it, and the web machine may not be a worker's.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.db import connection
from django.utils import timezone

from exports.analytics import cache  # first: it imports pandas (see there)
from exports.analytics.snapshot import (
    ensure_snapshot,
    read_state,
    refresh_snapshot,
    snapshot_as_of,
    snapshot_dir,
)

logger = logging.getLogger(__name__)

# A page that finds the snapshot older than this starts a refresh (and still answers at once).
MAX_AGE = timedelta(seconds=10)
# Below this many examples the page refreshes the snapshot itself (see above).
INLINE_BELOW = 20_000

_guard = threading.Lock()
_running: dict[Path, threading.Thread] = {}


@dataclass
class Freshness:
    """How fresh the figures a page shows are."""

    as_of: datetime | None  # when the snapshot's data was read (None: never refreshed)
    refreshing: bool = False  # a refresh is under way: a reload will show newer figures
    now: datetime | None = None
    # The figures are worth waiting for (a small snapshot, or the user asked for a refresh):
    # the result cache computes them in the request rather than serving older ones.
    wait: bool = False

    @property
    def age(self) -> str:
        """ "12 s", "4 min", "3 h", "2 days": how long ago `as_of` was."""
        if self.as_of is None:
            return "unknown"
        seconds = max(0, int(((self.now or timezone.now()) - self.as_of).total_seconds()))
        for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
            if seconds >= size * (2 if unit == "days" else 1):
                return f"{seconds // size} {unit}"
        return f"{seconds} s"


def keep_fresh(directory: Path | None = None) -> Freshness:
    """The snapshot's freshness, after starting a background refresh if it is old."""
    directory = directory or snapshot_dir()
    ensure_snapshot(directory)  # the first load of all builds it, once
    state = read_state(directory)
    if state and state["count"] < INLINE_BELOW and not is_refreshing(directory):
        refreshed = refresh_snapshot(directory=directory, wait=False) is not None
        return Freshness(snapshot_as_of(directory), not refreshed, timezone.now(), wait=True)
    now = timezone.now()
    as_of = snapshot_as_of(directory)
    refreshing = is_refreshing(directory)
    if not refreshing and (as_of is None or now - as_of > MAX_AGE):
        refreshing = start_refresh(directory)
    return Freshness(as_of, refreshing, now)


def refresh_now(directory: Path | None = None) -> Freshness:
    """Refresh in this request (the user asked), unless another process or thread already is:
    then answer at once, saying so."""
    directory = directory or snapshot_dir()
    ensure_snapshot(directory)
    busy = is_refreshing(directory) or refresh_snapshot(directory=directory, wait=False) is None
    return Freshness(snapshot_as_of(directory), busy, timezone.now(), wait=True)


def start_refresh(directory: Path) -> bool:
    """Refresh the snapshot in a background thread, unless one of this process already is."""
    with _guard:
        if directory in _running:
            return True
        thread = threading.Thread(
            target=_refresh, args=(directory,), name="analytics-refresh", daemon=True
        )
        _running[directory] = thread
    thread.start()
    return True


def is_refreshing(directory: Path) -> bool:
    with _guard:
        return directory in _running


def wait_for_refreshes(timeout: float | None = None) -> None:
    """Join this process's background refreshes, and the result cache's computations (tests,
    and a clean shutdown)."""
    with _guard:
        threads = list(_running.values())
    for thread in threads:
        thread.join(timeout)
    cache.wait_for_computations(timeout)


def _refresh(directory: Path) -> None:
    try:
        refresh_snapshot(directory=directory, wait=False)
    except Exception:  # a background thread has no one to raise to: the next load retries
        logger.exception("analytics snapshot refresh failed (%s)", directory)
    finally:
        connection.close()  # this thread's own database connection
        with _guard:
            _running.pop(directory, None)
