"""The export format plug-in: a small class with one job, turning records into rows.

    fmt = FORMATS["jsonl"]
    rows = fmt.rows(load_records(examples, options), options)
    problems = fmt.validate(row)          # [] when the consumer would accept it
    files = fmt.write(valid_rows, directory)

Formats never read the database: `exports.records` is the one conversion from our stored
trajectory, and every format starts from its `Record`s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from exports.options import ExportOptions
from exports.records import Record

# JSON text inside a row (arguments, tool lists): sorted keys, the same text for the same data
# however it was built. Rows themselves are written with their keys in the order the format
# builds them, the same in every process (tested): sorting every object's keys doubled the cost
# of writing a row.
JSON_OPTIONS = orjson.OPT_SORT_KEYS


class ExportError(Exception):
    """An export failed. `retryable` says whether running it again may help (a full disk, a
    database hiccup) or not (a bad option, a format that can't hold the data)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class Format:
    """One export format: `rows` builds its objects, `validate` checks one the way its consumer
    would, `write` puts the valid ones into files (by default one JSONL file)."""

    name: str = ""
    title: str = ""
    filename: str = "data.jsonl"
    # Rows are training examples, held to options.max_tokens; interchange formats (a whole
    # session per file, split or truncated by the consumer's own converters) are not.
    size_limited: bool = True

    def rows(
        self,
        records: Iterable[Record],
        options: ExportOptions,
        left_out: Counter[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """One output object per record (or per pair, for pairing formats). Records that give
        no row (no pair, nothing to label) are counted in `left_out` by reason."""
        raise NotImplementedError

    def validate(self, row: dict[str, Any]) -> list[str]:
        """What is wrong with `row` for this format's consumer; empty when it is valid."""
        return []

    def write(self, rows: Iterable[dict[str, Any]], directory: Path) -> list[Path]:
        """Write the rows as one JSONL file (sorted keys, "\\n" endings) in `directory`."""
        path = Path(directory) / self.filename
        write_jsonl(rows, path)
        return [path]


class Serialised(dict[str, Any]):
    """A row whose JSON (`dumps`) the pipeline made while checking it, written as those bytes
    rather than serialised a second time. Rows are never changed after their checks."""

    json: bytes


def row_json(row: dict[str, Any]) -> bytes:
    return row.json if type(row) is Serialised else dumps(row)


def write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> int:
    """Stream rows into `path`, one JSON object a line; returns how many were written."""
    count = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for row in rows:
            out.write(row_json(row) + b"\n")
            count += 1
    return count


def write_json_array(rows: Iterable[dict[str, Any]], path: Path) -> int:
    """Stream rows into `path` as one JSON array (for consumers that read `.json` files)."""
    count = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        out.write(b"[")
        for row in rows:
            out.write((b",\n" if count else b"\n") + row_json(row))
            count += 1
        out.write(b"\n]\n" if count else b"]\n")
    return count


def dumps(value: Any) -> bytes:
    """A row (or a file's one object) as JSON, keys in the order they were built."""
    return orjson.dumps(value)


def json_text(value: Any) -> str:
    """A JSON string inside a row (OpenAI `arguments`, ShareGPT `tools`): sorted keys, so the
    same data always gives the same text."""
    return orjson.dumps(value, option=JSON_OPTIONS).decode()
