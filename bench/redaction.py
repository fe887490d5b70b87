"""Redaction benchmark: `redact` on export rows against `orjson.dumps` of the same rows.

    .venv/bin/python bench/redaction.py [--rows 20000] [--secret-every 100]

Builds chat rows (the `messages` shape: a prompt, assistant turns with tool calls, tool
results) from real text: the builtin task templates' workspace files and the tool results and
texts of the transcript fixtures, cycled, with one planted secret every `--secret-every` rows.
Then, in this process: the baseline serialises every row with orjson (what writing the file
costs at least), and `exports.redaction.redact` walks every row. Prints rows/s and MB/s of
both, redaction's time as a multiple of the baseline's, the projected time for 100,000
examples, and how many secrets were found (it must be every planted one).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exports.redaction import redact  # noqa: E402

TEMPLATES = ROOT / "collection" / "task_templates" / "builtin"
TRANSCRIPTS = ROOT / "tests" / "fixtures" / "transcripts"
SECRET = "aws_access_key_id = AKIAIOSFODNN7EXAMPLE"


def texts() -> list[str]:
    """Real code, prose and tool output to fill the rows with."""
    found = [p.read_text("utf-8", "replace") for p in sorted(TEMPLATES.rglob("*")) if p.is_file()]
    for path in sorted(TRANSCRIPTS.glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            found += list(_strings(json.loads(line).get("message", {}).get("content")))
    return [text for text in found if text.strip()]


def _strings(content: Any) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, dict):
                yield from _strings(block.get("text") or block.get("content"))


def rows(count: int, secret_every: int) -> list[dict[str, Any]]:
    pool = itertools.cycle(texts())
    built = []
    for n in range(count):
        output = next(pool) + (f"\n{SECRET}\n" if n % secret_every == 0 else "")
        call = {
            "id": f"toolu_{n}",
            "type": "function",
            "function": {"name": "Bash", "arguments": {"command": f"cat file_{n}.py"}},
        }
        built.append(
            {
                "messages": [
                    {"role": "user", "content": next(pool)[:2000]},
                    {"role": "assistant", "content": next(pool)[:500], "tool_calls": [call]},
                    {
                        "role": "tool",
                        "name": "Bash",
                        "tool_call_id": f"toolu_{n}",
                        "content": output,
                    },
                    {"role": "assistant", "content": next(pool)[:1000]},
                ],
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "Bash",
                            "description": "Run",
                            "parameters": {"type": "object", "properties": {}},
                        },
                    }
                ],
            }
        )
    return built


def timed(work: Any, data: list[dict[str, Any]]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = [work(row) for row in data]
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--secret-every", type=int, default=100)
    args = parser.parse_args()
    data = rows(args.rows, args.secret_every)
    baseline, dumped = timed(orjson.dumps, data)
    megabytes = sum(len(d) for d in dumped) / 1e6
    redaction, results = timed(redact, data)
    found = sum(counts["aws_key"] for _, counts in results)
    planted = len(range(0, args.rows, args.secret_every))
    print(f"rows: {args.rows}  JSON: {megabytes:.1f} MB")
    for label, seconds in (("orjson.dumps (baseline)", baseline), ("redact", redaction)):
        print(f"{label:>24}: {args.rows / seconds:>10.0f} rows/s {megabytes / seconds:>8.1f} MB/s")
    print(f"redaction costs {redaction / baseline:.1f}x the baseline's time")
    print(f"projected for 100,000 examples: {redaction / args.rows * 100_000:.1f} s")
    print(f"planted secrets found: {found} of {planted}")


if __name__ == "__main__":
    main()
