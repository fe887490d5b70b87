"""The stores every process shares (web and workers, on one machine or several), through
Django's storage API: `storages["exports"]` (finished bundles), `storages["templates"]`
(uploaded task templates) and `storages["uploads"]` (transcripts waiting for their import).

    storages["uploads"].save("3f2a.../session.jsonl", upload)   # on the web machine
    with storages["uploads"].open("3f2a.../session.jsonl") as f: ...   # on a worker

By default each is a folder of the data folder (`DataFolderStorage`); settings.py builds them
from TRAININGDASH_SHARED_STORAGE (see `_shared_storage` there), so a team points all three at one
shared store (a mounted folder, an S3-compatible bucket) with one setting.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage


class DataFolderStorage(FileSystemStorage):
    """A FileSystemStorage on `folder` inside DATA_DIR, looked up when used, so that it follows
    DATA_DIR wherever that is set (a command's environment, a test's settings)."""

    def __init__(self, folder: str = "exports", **options: Any) -> None:
        super().__init__(**options)
        self.folder = folder

    @property
    def base_location(self) -> str:
        return os.path.join(settings.DATA_DIR, self.folder)

    @property
    def location(self) -> str:
        return os.path.abspath(self.base_location)
