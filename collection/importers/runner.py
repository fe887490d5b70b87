"""The Python API: import files, folders and globs, and report what happened.

    from collection.importers import import_paths
    report = import_paths(["~/.claude/projects"])
    print(report.summary())

Each session is stored in a savepoint of its own, so one bad session (or file) never undoes the
others; sessions are committed in batches (`writer.ImportBatch`), and an import can be stopped
and run again: what is stored is skipped.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from django.contrib.auth.models import AbstractBaseUser

from collection.importers.base import Importer, NotATranscript, TranscriptError
from collection.importers.reading import read_head
from collection.importers.registry import IMPORTERS, importer_for
from collection.importers.report import ImportProblem, ImportReport
from collection.importers.subagents import parent_session_file
from collection.importers.writer import ImportBatch

# What a folder walk looks at; a file named outright may have any name.
WALKED_SUFFIXES = {".jsonl", ".ndjson", ".json", ".traj"}
_GLOB_CHARS = set("*?[")


class Progress(Protocol):
    """A progress bar (tqdm fits): reset with the total bytes, then advanced per file."""

    def reset(self, total: float | None = None) -> None: ...

    def update(self, n: float = 1) -> bool | None: ...


@dataclass(frozen=True)
class Target:
    path: Path
    named: bool  # named outright or by a glob, rather than found in a folder walk


def import_file(
    path: str | Path,
    *,
    importer: str | None = None,
    user: AbstractBaseUser | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Import one file (every session in it)."""
    return import_paths([path], importer=importer, user=user, dry_run=dry_run)


def import_paths(
    paths: Iterable[str | Path],
    *,
    importer: str | None = None,
    user: AbstractBaseUser | None = None,
    dry_run: bool = False,
    fail_fast: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import every transcript in `paths` (files, folders walked recursively, globs).

    `importer` forces one importer instead of sniffing; `dry_run` reads and stores everything
    but rolls it back; `fail_fast` stops after the first file with an error.
    """
    started = time.monotonic()
    report = ImportReport(dry_run=dry_run)
    targets = find_targets(paths, report)
    if progress is not None:
        progress.reset(total=sum(_size(t.path) for t in targets))
    with ImportBatch(report, user=user, dry_run=dry_run) as batch:
        for target in targets:
            errors_before = len(report.errors)
            _import_target(target, report, batch, importer=importer)
            if progress is not None:
                progress.update(_size(target.path))
            if fail_fast and len(report.errors) > errors_before:
                break
    report.seconds = round(time.monotonic() - started, 3)
    return report


def import_growing(
    path: Path,
    checkpoint: dict[str, Any] | None,
    *,
    user: AbstractBaseUser | None = None,
    settle: bool = False,
) -> tuple[ImportReport, dict[str, Any] | None]:
    """Import a file that may still be written (the watch): from `checkpoint` on when its
    importer can resume a read, and the checkpoint to resume from next time (None: read it
    whole next time). `report.bytes` is what a resumed read read.

    A session stored before is updated (`closing.close_running`), not closed; `settle` closes
    it (categorised, scored, its example made or rescored), for a file that has gone quiet."""
    importer = _resumable(path, checkpoint)
    if importer is None:
        return import_file(path, user=user), None
    started = time.monotonic()
    report = ImportReport()
    report.files = 1
    found = None
    with ImportBatch(report, user=user) as batch:
        try:
            same = checkpoint and checkpoint.get("importer") == importer.name
            for feed in importer().resume(path, checkpoint if same else None):
                feed.running = not settle
                session = batch.store(feed)
                report.bytes += feed.bytes_read
                if session.status != "failed" and feed.checkpoint is not None:
                    found = feed.checkpoint | {"importer": importer.name}
        except TranscriptError as exc:
            report.errors.append(ImportProblem.from_error(exc))
        except OSError as exc:
            reason = f"cannot read: {exc.strerror}"
            report.errors.append(ImportProblem(file=str(path), reason=reason))
    if report.sessions and report.sessions[-1].status == "failed":
        found = None  # failed, or undone when its batch closed: read it all again
    report.seconds = round(time.monotonic() - started, 3)
    return report, found


def _resumable(path: Path, checkpoint: dict[str, Any] | None) -> type[Importer] | None:
    """The importer to resume with: the checkpoint's, else the file's if it can resume."""
    named = IMPORTERS.get(str((checkpoint or {}).get("importer")))
    if named is not None and named.resumes:
        return named
    try:
        chosen = importer_for(read_head(path))
    except (TranscriptError, OSError):
        return None  # import_file reports why
    return chosen if chosen.resumes else None


def find_targets(paths: Iterable[str | Path], report: ImportReport) -> list[Target]:
    """The files to import, each once, in a stable order; missing paths go to the report."""
    found: dict[Path, Target] = {}
    for raw in paths:
        text = os.path.expanduser(str(raw))
        files = _files_of(text)
        if files is None:
            report.errors.append(ImportProblem(file=text, reason="no such file, folder or match"))
        for file, named in files or []:
            # A sub-agent transcript is imported with its session.
            canonical = (parent_session_file(file) or file).resolve()
            previous = found.get(canonical)
            found[canonical] = Target(canonical, named or bool(previous and previous.named))
    return list(found.values())


def _files_of(text: str) -> list[tuple[Path, bool]] | None:
    """(file, named) for a file, a folder or a glob; None when nothing is there."""
    path = Path(text)
    if path.is_dir():
        return [(f, False) for f in _walk(path)]
    if path.is_file():
        return [(path, True)]
    if not _GLOB_CHARS & set(text):
        return None
    files: list[tuple[Path, bool]] = []
    for match in map(Path, sorted(glob.glob(text, recursive=True))):
        files += [(match, True)] if match.is_file() else [(f, True) for f in _walk(match)]
    return files or None


def _walk(folder: Path) -> list[Path]:
    return [f for f in sorted(folder.rglob("*")) if _walked(f)] if folder.is_dir() else []


def _walked(path: Path) -> bool:
    if path.name.startswith(".") or path.name.endswith(".meta.json"):
        return False
    return path.suffix in WALKED_SUFFIXES and path.is_file()


def _import_target(
    target: Target, report: ImportReport, batch: ImportBatch, *, importer: str | None
) -> None:
    path = target.path
    try:
        chosen = importer_for(read_head(path), importer)
    except NotATranscript as exc:
        (report.errors if target.named else report.ignored).append(ImportProblem.from_error(exc))
        return
    except TranscriptError as exc:
        report.errors.append(ImportProblem.from_error(exc))
        return
    except OSError as exc:
        report.errors.append(ImportProblem(file=str(path), reason=f"cannot read: {exc.strerror}"))
        return
    report.files += 1
    report.bytes += _size(path)
    try:
        for feed in chosen().read(path):
            batch.store(feed)
    except TranscriptError as exc:
        report.errors.append(ImportProblem.from_error(exc))
    except OSError as exc:
        report.errors.append(ImportProblem(file=str(path), reason=f"cannot read: {exc.strerror}"))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
