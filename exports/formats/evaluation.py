"""An evaluation set (`evaluation`): what each task asks, how success is decided, and a
reference trajectory that passed review.

    [{"id": "ex-12", "task": {"name": ..., "category": ..., "difficulty": ..., ...},
      "prompt": "Fix the failing test", "expected_outcomes": ["tests pass"],
      "constraints": [], "verifier": "pytest -q", "success": true, "quality": 0.91,
      "golden": true, "model": "claude-sonnet-4-5",
      "reference_trajectory": [{"role": "user", ...}, {"role": "assistant", ...}, ...],
      "reference_answer": "All tests pass."}]

One JSON array. One item per session: sub-agent conversations are part of their
coordinator's reference (its Task calls and their reports), not items of their own. The
reference trajectory uses the `messages` format's turns (arguments as objects, whole tool
outputs). The seed's `export_for_evaluation(include_golden_only=True)` exports golden
examples only; `verifier` is "" for sessions that had none (imported ones).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from exports.formats.base import Format, write_json_array
from exports.formats.hf_messages import _hf
from exports.formats.openai_chat import chat_messages
from exports.options import ExportOptions
from exports.records import Record

FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "task": dict,
    "prompt": str,
    "expected_outcomes": list,
    "constraints": list,
    "verifier": str,
    "success": (bool, type(None)),
    "quality": (int, float),
    "golden": bool,
    "model": str,
    "reference_trajectory": list,
    "reference_answer": str,
}


class EvaluationFormat(Format):
    name = "evaluation"
    title = "Evaluation set (JSON)"
    filename = "eval_dataset.json"

    def rows(
        self,
        records: Iterable[Record],
        options: ExportOptions,
        left_out: Counter[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        for record in records:
            if record.parent_id is None:
                yield _item(record, options)

    def validate(self, row: dict[str, Any]) -> list[str]:
        problems = [f"unknown key {k!r}" for k in sorted(set(row) - set(FIELDS))]
        for key, kind in FIELDS.items():
            if not isinstance(row.get(key), kind):
                problems.append(f"{key} is missing or of the wrong type")
        if problems:
            return problems
        if not row["prompt"].strip():
            problems.append("prompt is empty")
        trajectory = row["reference_trajectory"]
        if not any(m.get("role") == "assistant" for m in trajectory):
            problems.append("the reference trajectory has no assistant turn")
        return problems

    def write(self, rows: Iterable[dict[str, Any]], directory: Path) -> list[Path]:
        path = Path(directory) / self.filename
        write_json_array(rows, path)
        return [path]


def _item(record: Record, options: ExportOptions) -> dict[str, Any]:
    task = asdict(record.task)
    messages = chat_messages(record, options, arguments_as_text=False)
    return {
        "id": record.id,
        "task": {
            k: task[k]
            for k in ("name", "description", "category", "difficulty", "required_tools", "template")
        },
        "prompt": record.prompt,
        "expected_outcomes": record.task.expected_outcomes,
        "constraints": record.task.constraints,
        "verifier": record.task.verifier,
        "success": record.success,
        "quality": record.quality,
        "golden": record.golden,
        "model": record.model,
        "reference_trajectory": [_hf(message) for message in messages],
        "reference_answer": record.final_text,
    }
