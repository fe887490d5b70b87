"""Following folders: import sessions while they are written (`import_sessions --watch`).

    from collection.importers.watch import scan, watch
    result = scan(["~/.claude/projects"])  # one pass; `watch` repeats it every few seconds
    print(result.summary())

Polling, no dependency: each scan stats every transcript under the folders (inode, size, mtime)
and compares it with what `ImportWatchFile` stored at the last import, so a restarted watch
resumes where the last one stopped and unchanged files are not read at all. A changed file is
imported through `import_file`, which reads it whole and stores only what is new (messages are
idempotent on their keys): the stored offset decides *whether* a file is read, not where from,
because a session's later lines need its earlier ones (merged responses, pending tool calls,
the prompt that names the task). A file whose inode changed, or that shrank below its offset,
was rotated or replaced and starts again from offset 0.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from collection.importers.report import ImportReport
from collection.importers.runner import WALKED_SUFFIXES, import_file
from collection.importers.subagents import parent_session_file
from collection.models import ImportWatchFile

DEFAULT_ROOT = "~/.claude/projects"
DEFAULT_INTERVAL = 5.0
# A file written to this recently is shown as being written (its session still running).
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
            f"{self.updated} updated, {len(self.errors)} error(s)"
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
    groups: dict[Path, list[Seen]] = {}
    for item in seen:
        if _state(item, known.get(str(item.path))) != "same":
            # A sub-agent transcript is imported with its session, so the session is read.
            groups.setdefault(parent_session_file(item.path) or item.path, []).append(item)
    for target, items in groups.items():
        _import_group(target, items, result, user)
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
    rows = ImportWatchFile.objects.filter(root__in=roots).only("path", "inode", "offset", "mtime")
    return {row.path: row for row in rows}


def _state(item: Seen, row: ImportWatchFile | None) -> str:
    """new, rotated (replaced or shrunk: read from the start), grown (or rewritten), same."""
    if row is None:
        return "new"
    if row.inode != item.inode or item.size < row.offset:
        return "rotated"
    if item.size != row.offset or item.mtime != row.mtime:
        return "grown"
    return "same"


def _import_group(
    target: Path, items: list[Seen], result: ScanResult, user: AbstractBaseUser | None
) -> None:
    """Import a session's file under a lock on its row, so two watchers never both store it."""
    with transaction.atomic():
        ImportWatchFile.objects.get_or_create(path=str(target), defaults={"root": items[0].root})
        ImportWatchFile.objects.select_for_update().get(path=str(target))
        # Decide again under the lock: another watcher may have imported it meanwhile.
        rows = _rows(items)
        states = {s.path: _state(s, rows.get(str(s.path))) for s in items}
        if all(state == "same" for state in states.values()):
            return
        report = import_file(target, user=user)
        result.reports.append(report)
        result.changed.append(str(target))
        if "rotated" in states.values():
            result.rotated.append(str(target))
        for item in items:
            _remember(item, _note(report))


def _rows(items: list[Seen]) -> dict[str, ImportWatchFile]:
    rows = ImportWatchFile.objects.filter(path__in=[str(s.path) for s in items])
    # The target's row exists only to lock on until its first import: treat it as unseen.
    return {row.path: row for row in rows if row.mtime is not None}


def _remember(item: Seen, note: str) -> None:
    ImportWatchFile.objects.update_or_create(
        path=str(item.path),
        defaults={
            "root": item.root,
            "inode": item.inode,
            "offset": item.size,
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
