"""One data folder, one running trainingdash.

`run` (`manage.py up`) holds an exclusive flock on `run.lock` in the data folder for as long as
it serves; a second `run` on the same folder is refused, naming the one that holds it. The OS
drops the lock when its process dies, so a crashed run never blocks the next one. Management
commands don't take it: they use the running server's services (see `trainingdash.broker`).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO

from django.utils import timezone


class DataDirInUse(Exception):
    """Another trainingdash process serves from this data folder."""


def claim(data_dir: Path, url: str) -> IO[str]:
    """Own `data_dir` until the returned file is closed (or this process ends)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "run.lock"
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held for the server's lifetime)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = _describe(handle.read())
        handle.close()
        raise DataDirInUse(
            f"the data folder {data_dir} is in use by a running trainingdash ({owner}); stop "
            "it first (Ctrl-C where it runs), or give this one another folder with "
            "TRAININGDASH_DATA_DIR=..."
        ) from None
    handle.seek(0)
    handle.truncate()
    me = {"pid": os.getpid(), "url": url, "started": timezone.now().isoformat()}
    handle.write(json.dumps(me) + "\n")
    handle.flush()
    return handle


def _describe(text: str) -> str:
    try:
        owner = json.loads(text)
        return f"pid {owner['pid']}, {owner['url']}, since {owner['started']}"
    except (ValueError, KeyError, TypeError):
        return "starting up"  # it holds the lock and has not written who it is yet
