"""What an import did: sessions imported, updated or skipped, and every problem by file:line."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, computed_field

from collection.importers.base import TranscriptError

SessionStatus = Literal["imported", "updated", "skipped", "failed"]
LISTED_IGNORED = 20


class ImportProblem(BaseModel):
    file: str
    line: int | None = None
    reason: str

    @classmethod
    def from_error(cls, error: TranscriptError) -> ImportProblem:
        return cls(file=error.file, line=error.line, reason=error.reason)

    def __str__(self) -> str:
        return str(TranscriptError(self.file, self.line, self.reason))


class SessionReport(BaseModel):
    file: str
    importer: str
    session_id: str
    status: SessionStatus
    execution_id: int | None = None
    messages_added: int = 0


class ImportReport(BaseModel):
    dry_run: bool = False
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    sessions: list[SessionReport] = Field(default_factory=list)
    errors: list[ImportProblem] = Field(default_factory=list)
    # Files met in a folder walk that no importer recognises.
    ignored: list[ImportProblem] = Field(default_factory=list)

    def _count(self, status: SessionStatus) -> int:
        return sum(1 for s in self.sessions if s.status == status)

    # mypy can't type a decorator over @property (python/mypy#1362); pydantic's docs
    # recommend this ignore. The counts are computed fields so that dumps include them.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def imported(self) -> int:
        return self._count("imported")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def updated(self) -> int:
        return self._count("updated")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def execution_ids(self) -> list[int]:
        return [s.execution_id for s in self.sessions if s.execution_id is not None]

    def summary(self) -> str:
        """The report as text, one problem per line (what the command prints)."""
        verb = "would import" if self.dry_run else "imported"
        lines = [
            f"{self.files} file(s), {self.bytes / 1e6:.1f} MB in {self.seconds:.1f}s: "
            f"{verb} {self.imported} session(s), updated {self.updated}, "
            f"skipped {self.skipped} (already imported), failed {self.failed}; "
            f"{len(self.errors)} error(s)"
        ]
        lines += [f"  {problem}" for problem in self.errors]
        if self.ignored:
            lines.append(f"ignored {len(self.ignored)} file(s) that are not transcripts:")
            lines += [f"  {p.file}" for p in self.ignored[:LISTED_IGNORED]]
            if len(self.ignored) > LISTED_IGNORED:
                lines.append(f"  … and {len(self.ignored) - LISTED_IGNORED} more")
        return "\n".join(lines)
