"""Export bundles: one zip holding the data files, `manifest.json` and a dataset card.

    bundle = build_bundle(examples, "jsonl", ExportOptions(), work_dir() / "export-7-jsonl.zip",
                          filters={"category": "debugging"})
    bundle.path, bundle.size, bundle.manifest["files"]["data.jsonl"]["sha256"]
    size = store_bundle(bundle.path, "export-7-jsonl.zip")   # into storages["exports"]
    with open_bundle("export-7-jsonl.zip") as stored: ...    # None: not one of ours

The data files come from `exports.pipeline.run_export` (or, for "huggingface", from
`exports.huggingface.export_dataset`), written into a temporary folder beside the bundle; the zip
is written under a temporary name and renamed when complete, so a reader (or a worker killed
midway) never sees half a bundle. Entries are sorted and carry a fixed timestamp: the same data,
filters and seed give byte-identical data files, and a byte-identical zip around them whenever
the manifest's own fields (its creation time) are the same.

Export jobs build on the worker's own disk (`work_dir()`) and save the finished zip to the
`exports` storage (one of the shared stores of `trainingdash.storage`: DATA_DIR/exports by default,
any Django storage backend by setting), which the web process reads: web and workers may run on
different machines.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db.models import QuerySet

from collection.models import TrainingExample
from exports.huggingface import DatasetExport, export_dataset
from exports.options import ExportOptions
from exports.pipeline import ExportResult, run_export

SCHEMA_VERSION = 1
HUGGINGFACE = "huggingface"
# Zip entries carry this timestamp (the earliest a zip can hold): no build time in the bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# Temporary files older than this are a dead worker's leftovers: pruning removes them.
STALE_AFTER = timedelta(days=1)

# (examples done, examples in all), as exports.pipeline reports it
Progress = Callable[[int, int], None]


@dataclass
class Bundle:
    """A finished bundle: where it is, its size, and its manifest."""

    path: Path
    size: int
    manifest: dict[str, Any]
    counts: dict[str, Any] = field(default_factory=dict)


def bundle_storage() -> Storage:
    """Where finished bundles live, shared by the web process and every worker."""
    return storages["exports"]


def exports_dir() -> Path:
    """The exports storage's folder (made on first use) when it is a folder on this machine,
    as by default (DATA_DIR/exports). Raises NotImplementedError for a remote storage."""
    folder = Path(bundle_storage().path(""))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def work_dir() -> Path:
    """Where this worker builds bundles before storing them: DATA_DIR/tmp/exports, on its own
    disk (made on first use)."""
    folder = Path(settings.DATA_DIR) / "tmp" / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def format_choices() -> list[tuple[str, str]]:
    """(name, title) of every format a bundle can hold: the registry's, then Hugging Face."""
    from exports.formats import FORMATS

    return [(f.name, f.title) for f in FORMATS.values()] + [(HUGGINGFACE, "Hugging Face dataset")]


def software_version() -> str:
    try:
        return version("trainingdash")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


# --- building ------------------------------------------------------------------------------------


def build_bundle(
    examples: QuerySet[TrainingExample],
    format_name: str,
    options: ExportOptions,
    destination: Path,
    *,
    filters: dict[str, Any] | None = None,
    selected: int | None = None,
    progress: Progress | None = None,
) -> Bundle:
    """Export `examples` as `format_name` into the zip `destination` (replaced atomically).

    `filters` (the list's filters) and `selected` (how many examples were picked by hand) go
    into the manifest. Raises `exports.formats.ExportError` for an export that can't be made,
    and whatever `progress` raises (a cancelled job) after removing the temporary files.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    clear_leftovers(destination)
    work = Path(tempfile.mkdtemp(prefix=f".tmp-{destination.stem}-", dir=destination.parent))
    try:
        summary = _export_data(examples, format_name, options, work, progress, filters)
        manifest = _manifest(format_name, options, filters, selected, summary)
        manifest["files"] = {name: file_digest(work / name) for name in _data_files(work)}
        if "README.md" not in manifest["files"]:
            (work / "README.md").write_text(dataset_card(manifest), encoding="utf-8")
            manifest["files"]["README.md"] = file_digest(work / "README.md")
        (work / "manifest.json").write_bytes(_json(manifest))
        size = _zip_atomically(work, destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Bundle(destination, size, manifest, manifest["counts"])


def _export_data(
    examples: QuerySet[TrainingExample],
    format_name: str,
    options: ExportOptions,
    directory: Path,
    progress: Progress | None,
    filters: dict[str, Any] | None,
) -> dict[str, Any]:
    """Write the data files into `directory`; returns the counts the manifest reports."""
    result: ExportResult | DatasetExport
    if format_name == HUGGINGFACE:
        # Its own dataset card (README.md with the Hub's YAML header) comes with its files.
        result = export_dataset(examples, options, directory, progress=progress, filters=filters)
    else:
        result = run_export(examples, format_name, options, directory, progress=progress)
    return {
        "records": result.records,
        "written": result.written,
        "left_out": dict(sorted(result.left_out.items())),
        "findings": list(result.findings),
        "redactions": dict(sorted(result.redactions.items())),
    }


def _data_files(directory: Path) -> list[str]:
    """Every file under `directory`, as sorted relative POSIX paths."""
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def _manifest(
    format_name: str,
    options: ExportOptions,
    filters: dict[str, Any] | None,
    selected: int | None,
    summary: dict[str, Any],
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "software": {"name": "trainingdash", "version": software_version()},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "format": format_name,
        "options": options.model_dump(mode="json"),
        "filters": filters or {},
        "selected_examples": selected,
        "seed": options.seed,
        "counts": {
            "records": summary["records"],
            "written": summary["written"],
            "left_out": summary["left_out"],
        },
        "redactions": summary["redactions"],
        "findings": summary["findings"],
        "files": {},
    }


def _zip_atomically(work: Path, destination: Path) -> int:
    """Zip everything in `work` into `destination` through a temporary name."""
    part = destination.with_name(f".{destination.name}.part")
    try:
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in _data_files(work):
                _add(archive, work / name, name)
        with part.open("rb") as written:
            os.fsync(written.fileno())  # on disk before the name says "complete"
        os.replace(part, destination)
    except BaseException:
        # A full disk (or a cancel) mid-zip: no half bundle left taking the space it lacks.
        part.unlink(missing_ok=True)
        raise
    return destination.stat().st_size


def _add(archive: zipfile.ZipFile, path: Path, name: str) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    info.file_size = path.stat().st_size
    with path.open("rb") as source, archive.open(info, "w") as target:
        shutil.copyfileobj(source, target, 1 << 20)


def file_digest(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


# --- the exports storage -------------------------------------------------------------------------


def store_bundle(local: Path, name: str) -> int:
    """Save the complete zip `local` to the exports storage as `name`, replacing an earlier
    attempt's; returns its size there. A save that fails leaves nothing under `name`."""
    storage = bundle_storage()
    storage.delete(name)  # a redelivered job's earlier (perhaps half-saved) bundle
    saved = name
    try:
        with local.open("rb") as source:
            saved = storage.save(name, File(source, name=name))
        if saved != name:  # the storage kept a file that appeared meanwhile and renamed ours
            raise FileExistsError(f"the exports storage already holds {name!r}")
        return storage.size(name)
    except BaseException:
        storage.delete(saved)
        raise


def open_bundle(name: str) -> File | None:
    """The stored bundle `name` opened for reading, or None when `name` is not one of our
    bundle names, leads out of a local storage's folder (a symlink), or is not there."""
    if not is_bundle_name(name):
        return None
    storage = bundle_storage()
    # Only a folder on disk can hold a link leading out of it; elsewhere a name is a key.
    if isinstance(storage, FileSystemStorage) and bundle_path(name) is None:
        return None
    try:
        return storage.open(name, "rb")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None


def delete_stored_bundle(name: str) -> None:
    """Remove the bundle `name` from the exports storage (nothing for a name not ours)."""
    if is_bundle_name(name):
        bundle_storage().delete(name)


# --- the dataset card (formats other than Hugging Face, whose card comes with its files) --------


def dataset_card(manifest: dict[str, Any]) -> str:
    """A short README.md: what the bundle holds, how it was chosen, and what was left out."""
    counts = manifest["counts"]
    data = [name for name in manifest["files"] if name not in ("README.md", "manifest.json")]
    lines = [
        f"# trainingdash export: {manifest['format']}",
        "",
        f"{counts['written']} rows from {counts['records']} records, "
        f"written by trainingdash {manifest['software']['version']} "
        f"(manifest schema {manifest['schema_version']}).",
        "",
        "## Files",
        *(f"- `{name}`" for name in data),
        "- `manifest.json`: options, filters, seed, counts, sha256 of every file, "
        "redactions and validation findings",
        "",
        "## Chosen by",
        *_card_items(manifest),
        "",
        "## Left out",
        *(
            [f"- {reason}: {n}" for reason, n in counts["left_out"].items()]
            or ["- nothing: every record passed validation"]
        ),
        "",
        "## Redacted secrets",
        *(
            [f"- {kind}: {n}" for kind, n in manifest["redactions"].items()]
            or ["- none found" if manifest["options"]["redact"] else "- redaction was off"]
        ),
        "",
    ]
    return "\n".join(lines)


def _card_items(manifest: dict[str, Any]) -> Iterator[str]:
    if manifest["selected_examples"] is not None:
        yield f"- a selection of {manifest['selected_examples']} examples"
    filters = manifest["filters"]
    yield from (f"- {key} = {value}" for key, value in sorted(filters.items()))
    if manifest["selected_examples"] is None and not filters:
        yield "- every example"
    options = manifest["options"]
    thinking = "kept" if options["include_thinking"] else "left out"
    duplicates = "left out" if options["exclude_duplicates"] else "kept"
    yield f"- seed {manifest['seed']}; thinking {thinking}; duplicates {duplicates}"
    yield f"- sub-agents: {options['subagents']}"


# --- cleaning up ---------------------------------------------------------------------------------


def clear_leftovers(destination: Path) -> None:
    """Remove what an earlier, interrupted build of `destination` left behind."""
    folder = destination.parent
    (folder / f".{destination.name}.part").unlink(missing_ok=True)
    for leftover in folder.glob(f".tmp-{destination.stem}-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def remove_stale_temporaries(folder: Path, now: datetime | None = None) -> int:
    """Remove temporary files and folders older than STALE_AFTER (dead workers' leftovers)."""
    cutoff = (now or datetime.now(UTC)).timestamp() - STALE_AFTER.total_seconds()
    removed = 0
    for path in [*folder.glob(".tmp-*"), *folder.glob(".*.part")]:
        if path.stat().st_mtime < cutoff:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            removed += 1
    return removed


def is_bundle_name(name: str) -> bool:
    """Whether `name` can be one of our bundles: no separator, `..`, NUL, hidden or temporary
    file; a zip."""
    plain = bool(name) and name == Path(name).name and "\\" not in name
    # A NUL: no file has one, and resolving it would raise.
    return plain and not name.startswith(".") and name.endswith(".zip") and "\x00" not in name


def bundle_path(name: str) -> Path | None:
    """The bundle called `name` in a local exports storage's folder, or None for a name that
    is not one of ours (`is_bundle_name`) or that resolves outside the folder."""
    if not is_bundle_name(name):
        return None
    folder = exports_dir().resolve()
    path = (folder / name).resolve()
    return path if path.parent == folder else None
