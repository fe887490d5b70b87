"""One export, start to end: records -> format rows -> redaction -> validation -> files.

    result = run_export(filter_examples(filters), "jsonl", ExportOptions(), Path("out"))
    result.files, result.written, result.left_out   # {"duplicate": 3, "invalid": 1}

Everything streams: records are read a chunk at a time, rows are redacted, checked and written
one by one, so memory stays flat however many examples go out. A row with problems is left
out and counted, never written broken; what was wrong goes into `findings` (the manifest's).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db.models import QuerySet

from collection.models import TrainingExample
from exports.formats import get_format
from exports.formats.base import Format
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
    records = run.counted(load_records(examples, options))
    rows = fmt.rows(records, options, left_out=run.left_out)
    files = fmt.write(run.checked(rows), Path(directory))
    return run.result(files)


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
                if self.progress is not None:
                    self.progress(self.examples, self.total)
            yield record

    def checked(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for number, row in enumerate(rows, 1):
            if self.options.redact:
                row = self._redacted(row)
            problems = self.fmt.validate(row) + _shared_checks(self.fmt, row, self.options)
            if problems:
                self._leave_out(number, row, problems)
                continue
            self.written += 1
            yield row

    def _redacted(self, row: dict[str, Any]) -> dict[str, Any]:
        from exports.redaction import redact

        clean, found = redact(row)
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


def _shared_checks(fmt: Format, row: dict[str, Any], options: ExportOptions) -> list[str]:
    from exports.validation import check_row

    if not fmt.size_limited:
        options = options.model_copy(update={"max_tokens": sys.maxsize})
    return check_row(fmt.name, row, options)
