"""Alpaca instruction data (`instruct`), as LLaMA-Factory's default `alpaca` formatting reads it.

    {"instruction": "Fix the failing test", "input": "", "output": "The assertion ...",
     "system": "", "history": []}

How a multi-turn trajectory becomes one record (Alpaca has a slot for the answer, none for
tool calls or the steps between):
- the session is cut where the user speaks: the prompt and each later user message open an
  exchange, answered by the last assistant text before the next user message;
- the last exchange is the record: its user text is `instruction`, its answer is `output` —
  for the session's last exchange that is the session's final answer (the result message's
  text, else the last assistant text);
- earlier exchanges become `history`, [[user, answer], ...] in order; an exchange whose answer
  was only tool calls (no text) keeps an empty answer;
- `input` is always "" (our prompts are whole), `system` the system prompt;
- tool calls, tool outputs, thinking and review marks are left out; a record with no final
  text is left out by `validate` (there is nothing to learn).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from exports.formats.base import Format
from exports.options import ExportOptions
from exports.records import Record


class AlpacaFormat(Format):
    name = "instruct"
    title = "Alpaca instructions (JSONL)"
    filename = "data.jsonl"

    def rows(
        self,
        records: Iterable[Record],
        options: ExportOptions,
        left_out: Counter[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        for record in records:
            exchanges = _exchanges(record)
            *history, (instruction, _) = exchanges
            yield {
                "instruction": instruction,
                "input": "",
                "output": record.final_text,
                "system": record.system,
                "history": [[user, answer] for user, answer in history],
            }

    def validate(self, row: dict[str, Any]) -> list[str]:
        problems = [f"unknown key {k!r}" for k in sorted(set(row) - set(_FIELDS))]
        for key, kind in _FIELDS.items():
            if not isinstance(row.get(key), kind):
                problems.append(f"{key} must be a {kind.__name__}")
        if problems:
            return problems
        if not row["instruction"].strip():
            problems.append("instruction is empty")
        if not row["output"].strip():
            problems.append("output is empty")
        for n, pair in enumerate(row["history"]):
            if not (
                isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
            ):
                problems.append(f"history[{n}] must be a [user, assistant] pair of strings")
        return problems


_FIELDS: dict[str, type] = {
    "instruction": str,
    "input": str,
    "output": str,
    "system": str,
    "history": list,
}


def _exchanges(record: Record) -> list[tuple[str, str]]:
    """(user text, the last assistant text before the next user text), in order."""
    exchanges: list[tuple[str, str]] = [(record.prompt, "")]
    for step in record.steps:
        if step.user_text:
            exchanges.append((step.user_text, ""))
        if step.text:
            exchanges[-1] = (exchanges[-1][0], step.text)
    return exchanges
