"""Reading transcript files: JSON lines streamed one at a time, whole JSON documents, heads.

JSONL is read in binary, one line at a time with a size limit, so memory stays flat however
large the file is; a line over the limit is skipped without ever being held whole.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from django.conf import settings

from collection.importers.base import Head, NotATranscript, TranscriptError
from collection.sanitize import MAX_DEPTH, may_need_cleaning, storable

HEAD_BYTES = 64 * 1024
HEAD_RECORDS = 5
_SKIP_CHUNK = 1024 * 1024
_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-16 (and UTF-32 LE starts the same way)


class Numbered(NamedTuple):
    line: int
    record: dict[str, Any]


def max_line_bytes() -> int:
    return int(getattr(settings, "TRAININGDASH_IMPORT_MAX_LINE_BYTES", 10 * 1024 * 1024))


def max_document_bytes() -> int:
    """Whole-document formats (SWE-agent, OpenHands) are parsed at once: this bounds them."""
    return int(getattr(settings, "TRAININGDASH_IMPORT_MAX_DOCUMENT_BYTES", 256 * 1024 * 1024))


def read_head(path: Path) -> Head:
    """The first 64 KiB of a file as text (more when its first line is longer, up to the line
    limit), and the first JSON lines that fit in it."""
    with path.open("rb") as fh:
        raw, whole = _head_bytes(fh)
    if not raw.strip():
        # Claude Code leaves empty session files behind: a folder walk passes over them.
        raise NotATranscript(path, 1, "empty file")
    if raw.startswith(_WIDE_BOMS) or b"\x00" in raw:
        raise TranscriptError(path, 1, "UTF-16/UTF-32 or binary data: transcripts are UTF-8")
    text = raw.removeprefix(_UTF8_BOM).decode("utf-8", errors="replace")
    lines = text.splitlines()
    if not whole:
        lines = lines[:-1]  # the last one is cut where reading stopped
    return Head(path=path, text=text, records=_records(lines))


def _head_bytes(fh: Any) -> tuple[bytes, bool]:
    """The head's bytes, and whether they are the whole file. A first line longer than 64 KiB
    (a large pasted prompt) is read to its end: without it no importer recognises the file."""
    raw = fh.read(HEAD_BYTES)
    limit = max_line_bytes()
    while b"\n" not in raw.lstrip(b"\r\n") and len(raw) <= limit:
        more = fh.read(max(HEAD_BYTES, len(raw)))
        if not more:
            return raw, True
        raw += more
    return raw, fh.read(1) == b""


def _records(lines: list[str]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for line in lines:
        if len(records) == HEAD_RECORDS:
            break
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):  # reported by line when the file is read
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


@dataclass
class Cursor:
    """Where reading a growing file stopped: the end of its last complete line.

    With a cursor, `read_json_lines` starts at `offset`, counts lines on from `line`, and
    leaves an unfinished last line (no newline, not yet a whole JSON object) for the next read:
    the file is still being written. `bytes_read` counts what was read, to show that a resumed
    read reads only what is new.
    """

    offset: int = 0
    line: int = 0
    inode: int = 0
    bytes_read: int = 0

    def state(self) -> dict[str, int]:
        return {"offset": self.offset, "line": self.line, "inode": self.inode}

    @classmethod
    def restore(cls, state: dict[str, Any] | None) -> Cursor:
        state = state or {}
        return cls(
            int(state.get("offset", 0)), int(state.get("line", 0)), int(state.get("inode", 0))
        )


def read_json_lines(
    path: Path, on_problem: Callable[[TranscriptError], None], cursor: Cursor | None = None
) -> Iterator[Numbered]:
    """Yield (line number, object) for each usable line; report every other line and go on."""
    limit = max_line_bytes()
    with path.open("rb") as fh:
        number = cursor.line if cursor else 0
        if cursor:
            fh.seek(cursor.offset)
        while raw := fh.readline(limit + 1):
            number += 1
            ended = raw.endswith(b"\n")
            if len(raw) > limit and not ended:
                skipped, ended = _skip_rest_of_line(fh)
                if cursor and not ended:
                    return  # a long line still being written: read it whole next time
                if cursor:
                    cursor.bytes_read += len(raw) + skipped
                    cursor.offset, cursor.line = fh.tell(), number
                on_problem(TranscriptError(path, number, f"line longer than {limit} bytes"))
                continue
            if cursor:
                cursor.bytes_read += len(raw)
                if not ended and not _whole(raw.removeprefix(_UTF8_BOM)):
                    return  # still being written: the next read starts at this line
                cursor.offset, cursor.line = fh.tell(), number
            if number == 1:
                raw = raw.removeprefix(_UTF8_BOM)
            if not raw.strip():
                continue
            try:
                yield Numbered(number, _parse_line(raw))
            except ValueError as exc:
                on_problem(TranscriptError(path, number, str(exc)))


def _whole(raw: bytes) -> bool:
    """Whether a last line without its newline is a complete JSON object all the same."""
    try:
        return isinstance(orjson.loads(raw), dict)
    except orjson.JSONDecodeError:
        return False


def _skip_rest_of_line(fh: Any) -> tuple[int, bool]:
    """Read past the rest of an over-long line: bytes skipped, and whether its end was found."""
    skipped = 0
    while chunk := fh.readline(_SKIP_CHUNK):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            return skipped, True
    return skipped, False


def _parse_line(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)  # the common case, several times faster than json
        if may_need_cleaning(raw):
            value = storable(value)
    except orjson.JSONDecodeError:
        # What orjson refuses and json takes (NaN, lone surrogates, huge integers), and the
        # reason a bad line is bad, in json's words.
        value = storable(_parse_line_slowly(raw))
    if not isinstance(value, dict):
        raise ValueError(f"a JSON {type(value).__name__}, not an object")
    return value


def _parse_line_slowly(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start]
        raise ValueError(f"not UTF-8 (byte 0x{byte:02x} at column {exc.start + 1})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        if not raw.endswith(b"\n") and _cut_short(exc, text):
            raise ValueError("truncated: the file ends inside this line") from None
        raise ValueError(f"malformed JSON: {exc.msg} (column {exc.colno})") from None


def read_json_document(path: Path) -> tuple[Any, str]:
    """A whole JSON document and the sha256 of its bytes (its identity when it has no id)."""
    size = path.stat().st_size
    limit = max_document_bytes()
    if size > limit:
        raise TranscriptError(path, 1, f"{size} bytes, over the {limit}-byte document limit")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.removeprefix(_UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise TranscriptError(path, line, f"not UTF-8 (byte 0x{raw[exc.start]:02x})") from None
    try:
        return storable(json.loads(text)), digest
    except (RecursionError, ValueError) as exc:
        if not isinstance(exc, json.JSONDecodeError):  # too deep, for json or for us
            raise TranscriptError(path, None, f"nested deeper than {MAX_DEPTH} levels") from None
        if _cut_short(exc, text):
            reason = "truncated: the file ends inside the JSON document"
        else:
            reason = f"malformed JSON: {exc.msg} (column {exc.colno})"
        raise TranscriptError(path, exc.lineno, reason) from None


# What can be left unread when a line is cut inside a number or a literal (`12.`, `tr`, `-`).
_CUT_TOKEN = re.compile(r"[-+.eE0-9]+|t(r(ue?)?)?|f(a(l(se?)?)?)?|n(u(ll?)?)?")


def _cut_short(error: json.JSONDecodeError, text: str) -> bool:
    """Whether the JSON ends early: a string, value or container still open at the end of the
    text, or the text ending inside a number or a literal."""
    tail = text[error.pos :].rstrip()
    if not tail or error.msg.startswith("Unterminated string"):
        return True
    if error.msg.startswith("Invalid \\uXXXX escape"):  # cut inside a \u escape
        return error.pos + 6 > len(text.rstrip())
    return _CUT_TOKEN.fullmatch(tail) is not None


class Peekable:
    """An iterator of numbered records that can look one ahead (where one session ends)."""

    def __init__(self, items: Iterator[Numbered]) -> None:
        self._items = items
        self._next: Numbered | None = None

    def peek(self) -> Numbered | None:
        if self._next is None:
            self._next = next(self._items, None)
        return self._next

    def take(self) -> Numbered | None:
        item = self.peek()
        self._next = None
        return item
