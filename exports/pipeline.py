"""One export, start to end: records -> format rows -> redaction -> validation -> files.

    result = run_export(filter_examples(filters), "jsonl", ExportOptions(), Path("out"))
    result.files, result.written, result.left_out   # {"duplicate": 3, "invalid": 1}

Everything streams: records are read a chunk at a time, rows are redacted, checked and written
one by one, so memory stays flat however many examples go out. A row with problems is left
out and counted, never written broken; what was wrong goes into `findings` (the manifest's).
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db.models import QuerySet

from collection.models import TrainingExample
from exports.formats import get_format
from exports.formats.base import Format, Serialised, dumps
from exports.options import ExportOptions
from exports.records import Record, load_records, selected

# (examples done, examples in all)
Progress = Callable[[int, int], None]
# The manifest lists this many findings; the rest are counted.
MAX_FINDINGS = 1000


@dataclass
class ExportResult:
    files: list[Path]
    records: int = 0
    written: int = 0
    left_out: dict[str, int] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    redactions: dict[str, int] = field(default_factory=dict)


def run_export(
    examples: QuerySet[TrainingExample],
    format_name: str,
    options: ExportOptions,
    directory: Path,
    progress: Progress | None = None,
) -> ExportResult:
    """Export `examples` as `format_name` into `directory`; returns what went where."""
    fmt = get_format(format_name)
    run = _Run(fmt, options, progress, total=selected(examples, options).count())
    run.left_out.update(_not_selected(examples, options))
    with _collecting_per_chunk():
        records = run.counted(load_records(examples, options))
        rows = fmt.rows(records, options, left_out=run.left_out)
        files = fmt.write(run.checked(rows), Path(directory))
    return run.result(files)


# Examples between two garbage collections during an export.
GC_EVERY = 2000


@contextmanager
def _collecting_per_chunk() -> Iterator[None]:
    """Python's cyclic garbage collector off, collected by hand every GC_EVERY examples.

    An export allocates millions of small dicts and lists (parsed payloads, rows) that live a
    moment and hold no cycles: left on, the collector scans them every few hundred allocations,
    which measured as half the time spent reading trajectories. What is freed by reference
    counting still is at once; the hand-run collection catches any cycle, so memory stays flat.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _not_selected(examples: QuerySet[TrainingExample], options: ExportOptions) -> Counter[str]:
    """Examples the options leave out before any record is built, by reason."""
    left_out: Counter[str] = Counter()
    if options.exclude_duplicates:
        left_out["duplicate"] = examples.filter(duplicate_of__isnull=False).count()
        examples = examples.filter(duplicate_of__isnull=True)
    if options.golden_only:
        left_out["not golden"] = examples.filter(is_golden=False).count()
    return +left_out  # drop zero counts


class _Run:
    """The counters of one export, updated as rows stream through."""

    def __init__(
        self, fmt: Format, options: ExportOptions, progress: Progress | None, total: int
    ) -> None:
        self.fmt, self.options, self.progress, self.total = fmt, options, progress, total
        self.records = self.examples = self.written = 0
        self.left_out: Counter[str] = Counter()
        self.redactions: Counter[str] = Counter()
        self.findings: list[str] = []
        self.problems = 0

    def counted(self, records: Iterable[Record]) -> Iterator[Record]:
        for record in records:
            self.records += 1
            if record.parent_id is None:
                self.examples += 1
                if self.examples % GC_EVERY == 0:
                    gc.collect(1)  # the young generations: what this chunk left
                if self.progress is not None:
                    self.progress(self.examples, self.total)
            yield record

    def checked(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for number, row in enumerate(rows, 1):
            data = _json(row)
            if self.options.redact:
                clean = self._redacted(row, data)
                if clean is not row:
                    row, data = clean, _json(clean)
            size = len(data) if data is not None else None
            problems = self.fmt.validate(row) + _shared_checks(self.fmt, row, self.options, size)
            if problems:
                self._leave_out(number, row, problems)
                continue
            self.written += 1
            if data is None:
                yield row
                continue
            written = Serialised(row)
            written.json = data
            yield written

    def _redacted(self, row: dict[str, Any], data: bytes | None) -> dict[str, Any]:
        from exports.redaction import redact

        clean, found = redact(row, data)
        self.redactions.update(found)
        return clean

    def _leave_out(self, number: int, row: dict[str, Any], problems: list[str]) -> None:
        self.left_out["invalid"] += 1
        label = str(row.get("id") or row.get("trajectory_id") or f"row {number}")
        for problem in problems:
            if len(self.findings) < MAX_FINDINGS:
                self.findings.append(f"{label}: {problem}")
            self.problems += 1

    def result(self, files: list[Path]) -> ExportResult:
        findings = list(self.findings)
        if self.problems > len(findings):
            findings.append(f"... and {self.problems - len(findings)} more problems")
        return ExportResult(
            files=files,
            records=self.records,
            written=self.written,
            left_out=dict(sorted((+self.left_out).items())),  # + drops zero counts
            findings=findings,
            redactions=dict(sorted(self.redactions.items())),
        )


def _json(row: dict[str, Any]) -> bytes | None:
    """The row as JSON, looked at once by redaction and the size check (None: not JSON, which
    the format's validator reports)."""
    try:
        return dumps(row)
    except TypeError:
        return None


def _shared_checks(
    fmt: Format, row: dict[str, Any], options: ExportOptions, json_size: int | None
) -> list[str]:
    from exports.validation import check_row

    # A format without a size limit (whole trajectories, evaluation sets): a size of 0 tells
    # check_row the row fits, whatever it holds.
    return check_row(fmt.name, row, options, json_size if fmt.size_limited else 0)
