"""The importers, by name, and how a file finds its importer."""

from __future__ import annotations

from collection.importers.atif import AtifImporter
from collection.importers.base import Head, Importer, NotATranscript, TranscriptError
from collection.importers.claude_code import ClaudeCodeTranscriptImporter
from collection.importers.codex import CodexImporter
from collection.importers.openhands import OpenHandsImporter
from collection.importers.stream_json import StreamJsonImporter
from collection.importers.swe_agent import SweAgentImporter

# Tried in this order when sniffing a file.
IMPORTERS: dict[str, type[Importer]] = {
    "claude_code": ClaudeCodeTranscriptImporter,
    "stream_json": StreamJsonImporter,
    "swe_agent": SweAgentImporter,
    "openhands": OpenHandsImporter,
    # Last: each needs its own marker (a session_meta line, an ATIF schema_version).
    "codex": CodexImporter,
    "atif": AtifImporter,
}


def importer_for(head: Head, name: str | None = None) -> type[Importer]:
    """The named importer, or the first one that recognises the file's head."""
    if name:
        try:
            return IMPORTERS[name]
        except KeyError:
            known = ", ".join(IMPORTERS)
            raise TranscriptError(
                head.path, None, f"no importer {name!r} (known: {known})"
            ) from None
    for importer in IMPORTERS.values():
        if importer.recognises(head):
            return importer
    tried = ", ".join(i.label for i in IMPORTERS.values())
    raise NotATranscript(head.path, 1, f"not a transcript this dashboard can import ({tried})")
