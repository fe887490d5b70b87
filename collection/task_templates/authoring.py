"""Helps write a template: the Edit/Write steps that turn its workspace into its solution.

    python manage.py shell -c "from collection.task_templates.authoring import print_draft; \
        print_draft('path/to/template')"

Each Edit's `old_string` is grown with context lines until it is unique in the file at that
step, so the steps replay exactly in a real session (and pass the library's rehearsal).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any


def edit_steps_for_file(path: str, before: str | None, after: str) -> list[dict[str, Any]]:
    """Steps that turn `before` into `after` (a Write when the file is new)."""
    if before is None:
        return [{"tool": "Write", "input": {"file_path": path, "content": after}}]
    steps = []
    current = before
    while current != after:
        old, new = _first_hunk(current, after)
        steps.append(
            {"tool": "Edit", "input": {"file_path": path, "old_string": old, "new_string": new}}
        )
        current = current.replace(old, new, 1)
    return steps


def _first_hunk(current: str, target: str) -> tuple[str, str]:
    cur, tgt = current.splitlines(keepends=True), target.splitlines(keepends=True)
    ops = difflib.SequenceMatcher(None, cur, tgt, autojunk=False).get_opcodes()
    _, i1, i2, j1, j2 = next(op for op in ops if op[0] != "equal")
    lo, hi = i1, i2
    while True:
        old = "".join(cur[lo:hi])
        if old.strip() and current.count(old) == 1:
            return old, "".join(cur[lo:i1] + tgt[j1:j2] + cur[i2:hi])
        if lo > 0 and (hi - i2 >= i1 - lo or hi == len(cur)):
            lo -= 1
        elif hi < len(cur):
            hi += 1
        else:  # the whole file is not unique in itself: cannot happen, but never loop forever
            return current, target


def edit_steps(workspace: Path, solution: Path) -> list[dict[str, Any]]:
    """Edit/Write steps for every file of `solution` laid over `workspace`."""
    steps = []
    for file in sorted(p for p in solution.rglob("*") if p.is_file()):
        rel = file.relative_to(solution).as_posix()
        before = workspace / rel
        steps += edit_steps_for_file(
            rel, before.read_text() if before.is_file() else None, file.read_text()
        )
    return steps


def draft_script(template: Path, verifier: str) -> list[dict[str, Any]]:
    """A straight script: read the files the solution changes, edit them, run the verifier."""
    edits = edit_steps(template / "workspace", template / "solution")
    reads = [
        {"tool": "Read", "input": {"file_path": path}}
        for path in dict.fromkeys(s["input"]["file_path"] for s in edits if s["tool"] == "Edit")
    ]
    run = {"tool": "Bash", "input": {"command": verifier, "description": "Run the checks"}}
    return [*reads, *edits, run, {"text": "Done: the checks pass."}]


def print_draft(template: Path | str) -> None:
    """Print a script draft for a template folder (its manifest must name the verifier)."""
    folder = Path(template)
    manifest = json.loads((folder / "manifest.json").read_text())
    print(json.dumps(draft_script(folder, manifest.get("verifier", "")), indent=2))
