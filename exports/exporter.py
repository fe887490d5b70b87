"""The seed's `TrainingDataExporter`: a thin facade over the export pipeline, for scripts.

    storage = SQLiteTrainingStorage("training_data.db")
    exporter = TrainingDataExporter(storage)
    exporter.export_for_fine_tuning(output_path="fine_tuning.jsonl", format="jsonl")
    exporter.export_for_fine_tuning(output_path="conversations.json", format="conversations")
    exporter.export_for_fine_tuning(output_path="instructions.jsonl", format="instruct")
    exporter.export_for_evaluation(output_path="eval_dataset.json", format="json",
                                   include_golden_only=True)
    paths = exporter.export_for_ml_frameworks(output_dir="hf_dataset", framework="huggingface",
                                              split_ratio=(0.8, 0.1, 0.1))

Each call is the same export the dashboard runs (`exports.pipeline.run_export`: redaction on,
every row validated, duplicates left out), written to the file the caller names: the data file
only (LLaMA-Factory's `dataset_info.json` is a bundle's business), replaced in one step so a
reader never sees half a file. A format that writes several data files (one per session) fills
`output_path` as a folder instead. `filters` takes the seed's filter names
(`get_training_examples`); keyword options are `ExportOptions` fields.

Django is imported lazily: a script may import this module before its storage configures Django.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exports.formats.base import ExportError
from exports.options import ExportOptions

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from collection.models import TrainingExample
    from collection.queries import ExampleFilters
    from collection.storage import TrainingStorage
    from exports.pipeline import ExportResult

# Files a format writes beside its data for a bundle, not part of a single-file export.
COMPANIONS = {"dataset_info.json"}
EVALUATION_FORMATS = {"json": "evaluation"}
FRAMEWORKS = ("huggingface",)


class TrainingDataExporter:
    def __init__(self, storage: TrainingStorage | None = None) -> None:
        from collection.storage import seed_storage

        self.storage = seed_storage(storage)

    def export_for_fine_tuning(
        self,
        output_path: str | os.PathLike[str],
        format: str = "jsonl",
        filters: dict[str, Any] | ExampleFilters | None = None,
        **options: Any,
    ) -> ExportResult:
        """Write the examples matching `filters` as `format` (jsonl, conversations, instruct,
        messages, preference, stepwise, adp, atif) to `output_path`."""
        return _export_to(Path(output_path), _examples(filters), format, ExportOptions(**options))

    def export_for_evaluation(
        self,
        output_path: str | os.PathLike[str],
        format: str = "json",
        include_golden_only: bool = True,
        filters: dict[str, Any] | ExampleFilters | None = None,
        **options: Any,
    ) -> ExportResult:
        """Write the evaluation set (task, prompt, expected outcomes, constraints, verifier,
        reference trajectory) as one JSON array; golden examples only unless told otherwise."""
        if format not in EVALUATION_FORMATS:
            raise ExportError(f"evaluation sets are written as {', '.join(EVALUATION_FORMATS)}")
        settings = ExportOptions(**({"golden_only": include_golden_only} | options))
        return _export_to(
            Path(output_path), _examples(filters), EVALUATION_FORMATS[format], settings
        )

    def export_for_ml_frameworks(
        self,
        output_dir: str | os.PathLike[str],
        framework: str = "huggingface",
        split_ratio: tuple[float, float, float] = (0.8, 0.1, 0.1),
        filters: dict[str, Any] | ExampleFilters | None = None,
        **options: Any,
    ) -> Any:
        """A Hugging Face dataset folder (`load_from_disk`), Parquet per split and a dataset
        card; returns what `exports.huggingface.export_dataset` returns (the paths written)."""
        if framework not in FRAMEWORKS:
            raise ExportError(f"unknown framework {framework!r}; choose one of {FRAMEWORKS}")
        from exports.huggingface import export_dataset

        settings = ExportOptions(**({"split_ratio": tuple(split_ratio)} | options))
        chosen = (
            filters if isinstance(filters, dict | None) else filters.model_dump(exclude_none=True)
        )
        return export_dataset(_examples(filters), settings, Path(output_dir), filters=chosen)

    def export_analytics(
        self,
        output_dir: str | os.PathLike[str],
        format: str = "html",
        filters: dict[str, Any] | ExampleFilters | None = None,
    ) -> Path:
        """One self-contained HTML report (`analytics.html`, opens offline) or, `format="csv"`,
        one CSV per breakdown plus `summary.csv`, in `output_dir`: the analytics page's
        figures (`exports.analytics.reports.export_analytics`). Returns the file or folder."""
        from exports.analytics.reports import export_analytics

        return export_analytics(output_dir, format=format, filters=filters)


def _examples(filters: dict[str, Any] | ExampleFilters | None) -> QuerySet[TrainingExample]:
    from collection.queries import filter_examples

    return filter_examples(filters)


def _export_to(
    target: Path, examples: QuerySet[TrainingExample], format_name: str, options: ExportOptions
) -> ExportResult:
    """Export into a scratch folder beside `target`, then move the data into place."""
    from exports.pipeline import run_export

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as scratch:
        result = run_export(examples, format_name, options, Path(scratch))
        data = [path for path in result.files if path.name not in COMPANIONS]
        result.files = _move(data, target)
    return result


def _move(data: list[Path], target: Path) -> list[Path]:
    if len(data) == 1:
        os.replace(data[0], target)
        return [target]
    if target.exists():
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    target.mkdir()
    moved = []
    for path in data:
        os.replace(path, target / path.name)
        moved.append(target / path.name)
    return moved
