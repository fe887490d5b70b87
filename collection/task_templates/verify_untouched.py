"""Fails when files a task said to leave alone differ from the template's originals (no Django).

    python -m collection.task_templates.verify_untouched ORIGINAL_WORKSPACE FILE...

(run in the sandbox)
"""

from __future__ import annotations

import sys
from pathlib import Path


def changed_files(original: Path, work: Path, names: list[str]) -> list[str]:
    return [
        name
        for name in names
        if not (work / name).is_file()
        or (work / name).read_bytes() != (original / name).read_bytes()
    ]


if __name__ == "__main__":
    changed = changed_files(Path(sys.argv[1]), Path.cwd(), sys.argv[2:])
    if changed:
        sys.exit(f"these files must not be changed: {', '.join(changed)}")
