"""Importing agent sessions from disk: Claude Code transcripts, stream-json logs, SWE-agent and
OpenHands trajectories, Codex CLI rollouts and ATIF trajectories, each session stored as an
execution with its messages, tool calls, actions, metrics and a scored training example.

    report = import_paths(["~/.claude/projects", "logs/*.jsonl"])
    report = import_file("run.traj")

Importers are listed in `IMPORTERS`; each raises `TranscriptError` (file, line, reason).
"""

from __future__ import annotations

from collection.importers.base import Importer, NotATranscript, TranscriptError
from collection.importers.registry import IMPORTERS, importer_for
from collection.importers.report import ImportProblem, ImportReport, SessionReport
from collection.importers.runner import import_file, import_paths

__all__ = [
    "IMPORTERS",
    "ImportProblem",
    "ImportReport",
    "Importer",
    "NotATranscript",
    "SessionReport",
    "TranscriptError",
    "import_file",
    "import_paths",
    "importer_for",
]
