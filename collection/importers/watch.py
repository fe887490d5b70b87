"""Following folders: import sessions while they are written (`import_sessions --watch`).

    from collection.importers.watch import scan, watch
    result = scan(["~/.claude/projects"])  # one pass; `watch` repeats it every few seconds
    print(result.summary())

Polling, no dependency: each scan stats every transcript under the folders (inode, size, mtime)
and compares it with what `ImportWatchFile` stored at the last import, so a restarted watch
resumes where the last one stopped and unchanged files are not read at all. A file that grew
is read from its stored offset, the end of the last complete line imported (a half-written
last line waits for the next scan), with the importer's checkpoint stored beside it
(`runner.import_growing`): what the new lines need of the earlier ones (the response still
open, the keys given so far, the tallies the execution's totals come from) is in it, so a
scan costs what was added, not what the session holds. Importers that cannot resume (whole
JSON documents: SWE-agent, OpenHands, ATIF; and stream-json logs, Codex rollouts for now) are
read whole when they change, storing only what is new (messages are idempotent on their keys).
A file whose inode changed, or that shrank below its offset, was rotated or replaced and
starts again from offset 0.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from collection.importers.report import ImportReport
from collection.importers.runner import WALKED_SUFFIXES, import_growing
from collection.importers.subagents import parent_session_file
from collection.models import ImportWatchFile

DEFAULT_ROOT = "~/.claude/projects"
DEFAULT_INTERVAL = 5.0
# A file written to this recently is shown as being written (its session still running);
# a session read while running is closed (scored, made an example) once quiet this long.
LIVE_SECONDS = 60
FILES_SHOWN = 20


@dataclass(frozen=True)
class Seen:
    """One file as a scan found it on disk."""

    path: Path
    root: str
    inode: int
    size: int
    mtime: datetime


@dataclass
class ScanResult:
    files: int = 0
    changed: list[str] = field(default_factory=list)
    rotated: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)  # sessions closed now they are quiet
    missing_roots: list[str] = field(default_factory=list)
    reports: list[ImportReport] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return sum(r.imported for r in self.reports)

    @property
    def updated(self) -> int:
        return sum(r.updated for r in self.reports)

    @property
    def errors(self) -> list[str]:
        return [str(e) for r in self.reports for e in r.errors]

    def summary(self) -> str:
        return (
            f"{self.files} file(s) watched, {len(self.changed)} changed "
            f"({len(self.rotated)} rotated): {self.imported} session(s) imported, "
            f"{self.updated} updated, {len(self.settled)} closed now quiet, "
            f"{len(self.errors)} error(s)"
        )


def watch(
    roots: Iterable[str],
    *,
    interval: float = DEFAULT_INTERVAL,
    scans: int | None = None,
    user: AbstractBaseUser | None = None,
    on_scan: Callable[[ScanResult], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Scan every `interval` seconds, `scans` times (forever when None); the scans run."""
    roots = list(roots)
    done = 0
    while scans is None or done < scans:
        result = scan(roots, user=user)
        done += 1
        if on_scan is not None:
            on_scan(result)
        if scans is None or done < scans:
            sleep(interval)
    return done


def scan(roots: Iterable[str], *, user: AbstractBaseUser | None = None) -> ScanResult:
    """One pass: import every file that is new, grew, changed or was rotated since last time."""
    result = ScanResult()
    seen = _stat_roots(roots, result)
    result.files = len(seen)
    known = _known(seen)
    now = timezone.now()
    groups: dict[Path, list[Seen]] = {}
    for item in seen:
        row = known.get(str(item.path))
        if _state(item, row) != "same" or _settles(item, row, now):
            # A sub-agent transcript is imported with its session, so the session is read.
            groups.setdefault(parent_session_file(item.path) or item.path, []).append(item)
    for target, items in groups.items():
        _import_group(target, items, result, user, now)
    return result


def scan_configured() -> ScanResult | None:
    """The worker's scan of `TRAININGDASH_IMPORT_WATCH`; None when nothing is configured."""
    roots = settings.TRAININGDASH_IMPORT_WATCH
    return scan(roots) if roots else None


def _stat_roots(roots: Iterable[str], result: ScanResult) -> list[Seen]:
    seen: list[Seen] = []
    for raw in roots:
        root = Path(_root(raw))
        if root.is_file():
            files = [root]
        elif root.is_dir():
            files = [f for f in sorted(root.rglob("*")) if _watched(f)]
        else:
            result.missing_roots.append(str(root))
            continue
        seen += [s for s in (_stat(f, str(root)) for f in files) if s is not None]
    return seen


def _root(raw: str) -> str:
    return str(Path(os.path.expanduser(raw)).resolve())


def _watched(path: Path) -> bool:
    # The same files a folder import walks (runner.py): transcripts, not sidecar metadata.
    if path.name.startswith(".") or path.name.endswith(".meta.json"):
        return False
    return path.suffix in WALKED_SUFFIXES and path.is_file()


def _stat(path: Path, root: str) -> Seen | None:
    try:
        st = path.stat()
    except OSError:
        return None  # removed between the walk and the stat
    return Seen(path, root, st.st_ino, st.st_size, _from_ns(st.st_mtime_ns))


def _from_ns(ns: int) -> datetime:
    # Whole microseconds, as the database stores them, so a stored mtime compares equal.
    seconds, micros = divmod(ns // 1000, 1_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=micros)


def _known(seen: list[Seen]) -> dict[str, ImportWatchFile]:
    roots = {s.root for s in seen}
    rows = ImportWatchFile.objects.filter(root__in=roots).only(
        "path", "inode", "offset", "size", "mtime", "running"
    )
    return {row.path: row for row in rows}


def _state(item: Seen, row: ImportWatchFile | None) -> str:
    """new, rotated (replaced or shrunk: read from the start), grown (or rewritten), same."""
    if row is None:
        return "new"
    if row.inode != item.inode or item.size < row.offset:
        return "rotated"
    if item.size != row.size or item.mtime != row.mtime:
        return "grown"
    return "same"


def _settles(item: Seen, row: ImportWatchFile | None, now: datetime) -> bool:
    """A session read while it was written, now quiet: it is closed (`import_growing`)."""
    return row is not None and row.running and not _recent(item.mtime, now)


def _recent(mtime: datetime, now: datetime) -> bool:
    return now - mtime < timedelta(seconds=LIVE_SECONDS)


def _import_group(
    target: Path,
    items: list[Seen],
    result: ScanResult,
    user: AbstractBaseUser | None,
    now: datetime,
) -> None:
    """Import a session's file under a lock on its row, so two watchers never both store it."""
    with transaction.atomic():
        # Only its key: the checkpoint is read once, below.
        lockable = ImportWatchFile.objects.only("pk")
        lockable.get_or_create(path=str(target), defaults={"root": items[0].root})
        row = ImportWatchFile.objects.select_for_update().get(path=str(target))
        # Decide again under the lock: another watcher may have imported it meanwhile.
        rows = _rows(items)
        states = {s.path: _state(s, rows.get(str(s.path))) for s in items}
        changed = any(state != "same" for state in states.values())
        quiet = not any(_recent(s.mtime, now) for s in items)
        if not changed and not (row.running and quiet):
            return
        rotated = states.get(target) == "rotated"
        checkpoint = row.resume if row.mtime is not None and not rotated else None
        report, checkpoint = import_growing(target, checkpoint or None, user=user, settle=quiet)
        result.reports.append(report)
        if not changed:
            result.settled.append(str(target))
            ImportWatchFile.objects.filter(pk=row.pk).update(running=False)
            return
        result.changed.append(str(target))
        if "rotated" in states.values():
            result.rotated.append(str(target))
        note = _note(report)
        for item in items:
            _remember(item, note, _offset(item, target, checkpoint))
        # The checkpoint after this read, or none: the next change is read whole.
        running = checkpoint is not None and not quiet
        ImportWatchFile.objects.filter(pk=row.pk).update(resume=checkpoint or {}, running=running)


def _offset(item: Seen, target: Path, checkpoint: dict[str, Any] | None) -> int:
    """Where the file's next read starts: the end of its last complete line read."""
    if checkpoint is None:
        return item.size
    if item.path == target:
        return int(checkpoint["cursor"]["offset"])
    agent = checkpoint.get("agents", {}).get(item.path.stem.removeprefix("agent-"))
    return int(agent["cursor"]["offset"]) if agent else item.size


def _rows(items: list[Seen]) -> dict[str, ImportWatchFile]:
    rows = ImportWatchFile.objects.filter(path__in=[str(s.path) for s in items])
    # The target's row exists only to lock on until its first import: treat it as unseen.
    return {row.path: row for row in rows if row.mtime is not None}


def _remember(item: Seen, note: str, offset: int) -> None:
    ImportWatchFile.objects.update_or_create(
        path=str(item.path),
        defaults={
            "root": item.root,
            "inode": item.inode,
            "offset": offset,
            "size": item.size,
            "mtime": item.mtime,
            "note": note[:500],
        },
    )


def _note(report: ImportReport) -> str:
    added = sum(s.messages_added for s in report.sessions)
    note = f"{report.imported} imported, {report.updated} updated, {added} message(s) added"
    if report.errors:
        note += f"; {len(report.errors)} error(s), first: {report.errors[0]}"
    elif report.ignored:
        note += f"; not a transcript: {report.ignored[0].reason}"
    return note


@dataclass
class WatchedFolder:
    """A folder on the Import page: its most recently changed files and its last activity."""

    root: str
    configured: bool
    file_count: int = 0
    last_activity: datetime | None = None
    # (file, live): live when written to within LIVE_SECONDS, its session probably running.
    files: list[tuple[ImportWatchFile, bool]] = field(default_factory=list)


def watched_folders(now: datetime | None = None) -> list[WatchedFolder]:
    """Folders configured for the worker, then any a command-line watch has followed."""
    now = now or timezone.now()
    configured = [_root(r) for r in settings.TRAININGDASH_IMPORT_WATCH]
    stats = ImportWatchFile.objects.values("root").annotate(n=Count("id"), last=Max("updated_at"))
    by_root: dict[str, tuple[int, datetime | None]] = {
        s["root"]: (s["n"], s["last"]) for s in stats.order_by("root")
    }
    folders = [WatchedFolder(r, True) for r in configured]
    folders += [WatchedFolder(r, False) for r in by_root if r not in configured]
    for folder in folders:
        folder.file_count, folder.last_activity = by_root.get(folder.root, (0, None))
        recent = ImportWatchFile.objects.filter(root=folder.root).order_by("-updated_at")
        folder.files = [(row, is_live(row, now)) for row in recent[:FILES_SHOWN]]
    return folders


def is_live(row: ImportWatchFile, now: datetime) -> bool:
    """Written to within LIVE_SECONDS: the session in it is probably still running."""
    return row.mtime is not None and now - row.mtime < timedelta(seconds=LIVE_SECONDS)
