"""Unpacking uploaded zip archives without letting a path escape the target folder."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath
from typing import IO


class ArchiveError(ValueError):
    """An archive that must not be unpacked; the message names the entry and the reason."""


def safe_extract(
    archive: IO[bytes] | Path, target: Path, *, max_bytes: int, max_files: int
) -> Path:
    """Check every entry first (absolute paths, `..`, links, total size), then unpack.

    Nothing is written unless the whole archive passes.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > max_files:
                raise ArchiveError(f"{len(members)} files, more than {max_files}")
            if sum(m.file_size for m in members) > max_bytes:
                raise ArchiveError(f"unpacks to more than {max_bytes} bytes")
            for m in members:
                _check(m)
            target.mkdir(parents=True, exist_ok=True)
            for m in members:
                zf.extract(m, target)
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"not a zip archive ({exc})") from exc
    return target


def _check(member: zipfile.ZipInfo) -> None:
    path = PurePosixPath(member.filename)
    if path.is_absolute() or ".." in path.parts or "\\" in member.filename:
        raise ArchiveError(f"{member.filename}: path escapes the upload folder")
    if (member.external_attr >> 16) & 0o170000 == 0o120000:
        raise ArchiveError(f"{member.filename}: links are not allowed")
