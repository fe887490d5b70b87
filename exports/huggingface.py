"""Hugging Face datasets: Parquet per split, a `load_from_disk` folder and a dataset card.

    written = export_dataset(examples, ExportOptions(seed=3), Path("hf_dataset"))
    written["train"]      # hf_dataset/data/train-00000-of-00001.parquet
    written["dataset"]    # hf_dataset/dataset  -> datasets.load_from_disk(...) is a DatasetDict
    written["card"]       # hf_dataset/README.md (YAML header: configs, license, sizes, ...)
    written.written, written.left_out, written.redactions   # what the manifest reports

Layout (what `push_to_hub` and `save_to_disk` write):

    README.md                                  the dataset card
    data/{train,validation,test}-00000-of-00001.parquet
    dataset/dataset_dict.json                  {"splits": ["train", "validation", "test"]}
    dataset/<split>/data-00000-of-00001.arrow  Arrow IPC stream
    dataset/<split>/dataset_info.json, state.json

Rows are the `messages` format (TRL's conversational type with tools: `messages`, `tools`), made
by `exports.pipeline.run_export`, so redaction and validation apply exactly as for every other
format. Splits come from `exports.splits` (seeded, grouped by task); each split is exported in
chunks of tasks (bounded `IN` lists) into a staging folder and streamed into its files a batch at
a time: memory stays flat however many examples go out.

Why pyarrow and not `datasets` at run time: `datasets` is only a test dependency (it pulls in a
large stack), `save_to_disk` needs the whole table built first, and its cache and fingerprints
would put machine-local state into our files. The layout is small and documented; the tests
read every file back with `datasets.load_from_disk` and `load_dataset("parquet", ...)`.

Arrow needs one schema per column, and tool arguments and tool parameter schemas have different
keys in every call: they are stored as JSON text with Arrow's canonical `arrow.json` extension
type. `datasets` (with its `Json` feature, since 2026) hands them back as objects, as TRL
expects; pandas, DuckDB and Polars read them as JSON strings. Every other field has a fixed type.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from django.db.models import Count, Q, QuerySet, Sum

from collection.models import Source, ToolCall, TrainingExample
from exports.formats.base import json_text
from exports.options import ExportOptions
from exports.pipeline import ExportResult, run_export
from exports.records import selected
from exports.splits import SPLITS, split_tasks

FORMAT = "messages"
BATCH_ROWS = 256  # rows per Arrow batch / Parquet row group: bounded memory, few groups
TASK_CHUNK = 500  # task ids per export query: keeps `IN (...)` well under database limits
ARROW_FILE = "data-00000-of-00001.arrow"

Progress = Callable[[int, int], None]


def _schema(json_type: pa.DataType) -> pa.Schema:
    function = pa.struct([("name", pa.string()), ("arguments", json_type)])
    call = pa.struct([("id", pa.string()), ("type", pa.string()), ("function", function)])
    message = pa.struct(
        [
            ("role", pa.string()),
            ("content", pa.string()),
            ("reasoning_content", pa.string()),
            ("name", pa.string()),
            ("tool_call_id", pa.string()),
            ("tool_calls", pa.list_(call)),
        ]
    )
    tool_function = pa.struct(
        [("name", pa.string()), ("description", pa.string()), ("parameters", json_type)]
    )
    tool = pa.struct([("type", pa.string()), ("function", tool_function)])
    return pa.schema([("messages", pa.list_(message)), ("tools", pa.list_(tool))])


SCHEMA = _schema(pa.json_())
# pyarrow builds extension arrays only by casting: rows are built with strings, then cast.
_STORAGE = _schema(pa.string())


class DatasetExport(dict[str, Path]):
    """What `export_dataset` wrote: split / "dataset" / "card" -> path, plus the counts an
    `ExportResult` carries (summed over the splits) and the rows of each split."""

    def __init__(self, paths: Mapping[str, Path], result: ExportResult, rows: dict[str, int]):
        super().__init__(paths)
        self.files = sorted(paths.values())
        self.records, self.written = result.records, result.written
        self.left_out, self.findings = result.left_out, result.findings
        self.redactions = result.redactions
        self.split_rows = rows


def export_dataset(
    examples: QuerySet[TrainingExample],
    options: ExportOptions,
    directory: Path,
    *,
    progress: Progress | None = None,
    filters: Mapping[str, Any] | None = None,
    license_id: str = "unknown",
) -> DatasetExport:
    """Write `examples` as a Hugging Face dataset into `directory` (see the module docstring).
    `filters` (how the examples were chosen) and the license go into the card."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    plan = split_tasks(examples, options)
    tally = _Tally(progress, selected(examples, options).count())
    paths: dict[str, Path] = {}
    rows: dict[str, int] = {}
    with tempfile.TemporaryDirectory(dir=directory, prefix=".staging-") as staging:
        for split in SPLITS:
            with SplitWriter(split, directory) as writer:
                for part in _export_split(examples, plan[split], options, Path(staging), tally):
                    writer.add_all(part)
            paths[split], rows[split] = writer.parquet_path, writer.rows
    paths["dataset"] = _write_dataset_dict(directory)
    result = tally.result()
    paths["card"] = write_card(
        directory, examples, options, rows, result, filters=filters, license_id=license_id
    )
    return DatasetExport(paths, result, rows)


def _export_split(
    examples: QuerySet[TrainingExample],
    task_ids: list[int],
    options: ExportOptions,
    staging: Path,
    tally: _Tally,
) -> Iterator[Iterator[dict[str, Any]]]:
    """Export the split's tasks a chunk at a time; yields each chunk's rows as they are read."""
    for start in range(0, len(task_ids), TASK_CHUNK):
        chunk = examples.filter(execution__task_id__in=task_ids[start : start + TASK_CHUNK])
        folder = staging / f"part-{start}"
        result = run_export(chunk, FORMAT, options, folder, progress=tally.progress)
        tally.add(result)
        for path in result.files:
            yield _read_jsonl(path)
        shutil.rmtree(folder)


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as lines:
        for line in lines:
            yield orjson.loads(line)


class _Tally:
    """Sums the per-chunk export results; turns per-chunk progress into overall progress."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self._progress, self._total = progress, total
        self._done_before = self._done_now = 0
        self.records = self.written = 0
        self.left_out: Counter[str] = Counter()
        self.redactions: Counter[str] = Counter()
        self.findings: list[str] = []

    def progress(self, done: int, _total: int) -> None:
        self._done_now = done
        if self._progress is not None:
            self._progress(self._done_before + done, self._total)

    def add(self, result: ExportResult) -> None:
        self._done_before += self._done_now
        self._done_now = 0
        self.records += result.records
        self.written += result.written
        self.left_out.update(result.left_out)
        self.redactions.update(result.redactions)
        self.findings += result.findings

    def result(self) -> ExportResult:
        return ExportResult(
            files=[],
            records=self.records,
            written=self.written,
            left_out=dict(sorted((+self.left_out).items())),
            findings=self.findings,
            redactions=dict(sorted(self.redactions.items())),
        )


class SplitWriter:
    """Streams one split's rows into its Parquet file and its Arrow folder, a batch at a time."""

    def __init__(self, split: str, directory: Path) -> None:
        self.split = split
        self.parquet_path = directory / "data" / f"{split}-00000-of-00001.parquet"
        self.arrow_dir = directory / "dataset" / split
        self.parquet_path.parent.mkdir(parents=True, exist_ok=True)
        self.arrow_dir.mkdir(parents=True, exist_ok=True)
        self.rows = 0
        self._batch: list[dict[str, Any]] = []
        self._parquet = pq.ParquetWriter(self.parquet_path, SCHEMA)
        self._sink = pa.OSFile(str(self.arrow_dir / ARROW_FILE), "wb")
        self._stream = pa.ipc.new_stream(self._sink, SCHEMA)

    def add_all(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self._batch.append(arrow_row(row))
            if len(self._batch) >= BATCH_ROWS:
                self._flush()

    def _flush(self) -> None:
        if not self._batch:
            return
        table = pa.Table.from_pylist(self._batch, schema=_STORAGE).cast(SCHEMA)
        self._parquet.write_table(table)
        self._stream.write_table(table)
        self.rows += len(self._batch)
        self._batch = []

    def __enter__(self) -> SplitWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self._flush()
        self._parquet.close()
        self._stream.close()
        self._sink.close()
        if kind is None:
            self._write_state()

    def _write_state(self) -> None:
        """The two JSON files `Dataset.load_from_disk` reads beside the Arrow file."""
        digest = hashlib.sha256((self.arrow_dir / ARROW_FILE).read_bytes()).hexdigest()
        state: dict[str, Any] = {
            "_data_files": [{"filename": ARROW_FILE}],
            "_fingerprint": digest[:16],  # from the bytes: same data, same fingerprint
            "_format_columns": None,
            "_format_kwargs": {},
            "_format_type": None,
            "_output_all_columns": False,
            "_split": self.split,
        }
        # No features: `datasets` reads them from the Arrow schema (Json for arrow.json).
        info = {"description": "Agent trajectories exported by trainingdash.", "splits": {}}
        _write_json(self.arrow_dir / "state.json", state)
        _write_json(self.arrow_dir / "dataset_info.json", info)


def arrow_row(row: dict[str, Any]) -> dict[str, Any]:
    """A `messages` row in the Arrow schema's shape: tool arguments and parameters as JSON."""
    return {
        "messages": [_message(message) for message in row["messages"]],
        "tools": [_tool(tool) for tool in row.get("tools") or []],
    }


def _message(message: dict[str, Any]) -> dict[str, Any]:
    calls = message.get("tool_calls")
    return {
        "role": message["role"],
        "content": message.get("content"),
        "reasoning_content": message.get("reasoning_content"),
        "name": message.get("name"),
        "tool_call_id": message.get("tool_call_id"),
        "tool_calls": [_call(call) for call in calls] if calls else None,
    }


def _call(call: dict[str, Any]) -> dict[str, Any]:
    function = call["function"]
    arguments = function.get("arguments")
    text = arguments if isinstance(arguments, str) else json_text(arguments)
    return {
        "id": call.get("id"),
        "type": call.get("type", "function"),
        "function": {"name": function["name"], "arguments": text},
    }


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool["function"]
    return {
        "type": tool.get("type", "function"),
        "function": {
            "name": function["name"],
            "description": function.get("description"),
            "parameters": json_text(function.get("parameters") or {}),
        },
    }


def _write_dataset_dict(directory: Path) -> Path:
    folder = directory / "dataset"
    _write_json(folder / "dataset_dict.json", {"splits": list(SPLITS)})
    return folder


def _write_json(path: Path, value: Any) -> None:
    path.write_bytes(orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))


# --- the dataset card ------------------------------------------------------------------------

SIZE_BUCKETS = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
)


def size_category(rows: int) -> str:
    """Hugging Face's `size_categories` bucket for `rows` rows."""
    return next((label for limit, label in SIZE_BUCKETS if rows < limit), "n>100M")


def write_card(
    directory: Path,
    examples: QuerySet[TrainingExample],
    options: ExportOptions,
    rows: dict[str, int],
    result: ExportResult,
    *,
    filters: Mapping[str, Any] | None,
    license_id: str,
) -> Path:
    """README.md: the YAML header the Hub reads, then what the data is and how it was made."""
    stats = card_stats(selected(examples, options))
    header = card_header(rows, stats, license_id)
    body = card_body(rows, stats, options, result, filters or {})
    path = directory / "README.md"
    path.write_text("---\n" + "\n".join(yaml_lines(header)) + "\n---\n\n" + body, "utf-8")
    return path


def card_header(rows: dict[str, int], stats: dict[str, Any], license_id: str) -> dict[str, Any]:
    tags = ["agent", "tool-use", "trajectories", "claude-code"]
    if Source.SCRIPTED in stats["sources"]:
        tags.append("synthetic")  # scripted-model sessions are not real model output
    return {
        "license": license_id,
        "task_categories": ["text-generation"],
        "tags": tags,
        "size_categories": [size_category(sum(rows.values()))],
        "pretty_name": "Agent trajectories (trainingdash export)",
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*"} for s in SPLITS],
            }
        ],
        "dataset_info": {"splits": [{"name": s, "num_examples": rows[s]} for s in SPLITS]},
    }


def card_stats(examples: QuerySet[TrainingExample]) -> dict[str, Any]:
    """What the card reports about the exported examples, from a few aggregate queries."""
    totals = examples.aggregate(
        examples=Count("pk"),
        cost=Sum("execution__cost_usd"),
        passed=Count("pk", filter=Q(execution__success=True)),
        judged=Count("pk", filter=Q(execution__success__isnull=False)),
    )
    tools = (
        ToolCall.objects.filter(execution__training_example__in=examples)
        .values_list("name")
        .annotate(n=Count("pk"))
    )
    return totals | {
        "models": _counts(examples, "execution__model"),
        "sources": _counts(examples, "execution__source"),
        "tools": dict(sorted(tools, key=lambda item: (-item[1], item[0]))),
    }


def _counts(examples: QuerySet[TrainingExample], field: str) -> dict[str, int]:
    pairs = examples.order_by().values_list(field).annotate(n=Count("pk"))
    return dict(sorted(((name or "unknown", n) for name, n in pairs), key=lambda p: (-p[1], p[0])))


def card_body(
    rows: dict[str, int],
    stats: dict[str, Any],
    options: ExportOptions,
    result: ExportResult,
    filters: Mapping[str, Any],
) -> str:
    judged = stats["judged"]
    pass_rate = f"{stats['passed'] / judged:.1%} of {judged}" if judged else "no verdicts"
    lines = [
        "# Agent trajectories",
        "",
        "Agent sessions (Claude Code style: tool calls and their results) exported by trainingdash "
        "in TRL's conversational format with tools: `messages` and `tools`.",
        "",
        "```python",
        "from datasets import load_dataset, load_from_disk",
        'ds = load_dataset("parquet", data_files={"train": "data/train-*.parquet"})',
        'ds = load_from_disk("dataset")  # the same rows, as a DatasetDict',
        "```",
        "",
        "Tool-call `arguments` and tool `parameters` are JSON (Arrow's `arrow.json` type): "
        "`datasets` gives them back as objects, pandas and DuckDB as JSON strings.",
        "",
        "## Splits",
        "",
        *[f"- {split}: {rows[split]} rows" for split in SPLITS],
        "",
        f"Grouped by task (no task in two splits), seed {options.seed}, "
        f"ratio {' / '.join(str(share) for share in options.split_ratio)} "
        "as close as whole tasks allow. Sub-agent conversations are rows of their own "
        f"(`subagents={options.subagents}`).",
        "",
        "## What is in it",
        "",
        f"- Examples: {stats['examples']}; rows written: {result.written}",
        f"- Pass rate (the task's verifier or the session's result): {pass_rate}",
        f"- Cost of the sessions: ${stats['cost'] or 0:.2f}",
        f"- Models: {_listing(stats['models'])}",
        f"- Sources: {_listing(stats['sources'])}",
        f"- Tools called: {_listing(stats['tools'])}",
        "",
        "## How it was made",
        "",
        f"- Filters: {_json(dict(filters)) if filters else 'none (every example)'}",
        f"- Options: {_json(options.model_dump(mode='json'))}",
        f"- Left out: {_listing(result.left_out) if result.left_out else 'nothing'}",
        f"- Secrets redacted: {_listing(result.redactions) if result.redactions else 'none found'}",
        "",
    ]
    return "\n".join(lines)


def _listing(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} ({n})" for name, n in counts.items()) or "none"


def _json(value: Any) -> str:
    return "`" + json.dumps(value, sort_keys=True) + "`"


def yaml_lines(value: Mapping[str, Any], indent: int = 0) -> list[str]:
    """Block-style YAML for the card's header (mappings, lists, scalars). Strings are written as
    JSON strings, which YAML reads as double-quoted scalars: no quoting rules to get wrong."""
    pad = " " * indent
    lines: list[str] = []
    for key, item in value.items():
        if isinstance(item, Mapping | list) and item:
            lines.append(f"{pad}{key}:")
            lines += _yaml_block(item, indent + 2)
        else:
            lines.append(f"{pad}{key}: {_scalar(item)}")
    return lines


def _yaml_block(item: Mapping[str, Any] | list[Any], indent: int) -> list[str]:
    if isinstance(item, Mapping):
        return yaml_lines(item, indent)
    lines: list[str] = []
    for element in item:
        if isinstance(element, Mapping) and element:
            nested = yaml_lines(element, indent + 2)
            lines.append(" " * indent + "- " + nested[0].lstrip())
            lines += nested[1:]
        else:
            lines.append(" " * indent + "- " + _scalar(element))
    return lines


def _scalar(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | Mapping):
        return "[]" if isinstance(value, list) else "{}"
    return json.dumps(str(value))
