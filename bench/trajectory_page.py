"""Trajectory page benchmark: a 200-turn imported session's example page, against the bare SQL
it runs and against the old page's pprint rendering, measured in the same process.

    .venv/bin/python bench/trajectory_page.py [--turns 200] [--runs 15]

Writes a Claude Code transcript of `turns` turns (thinking, Markdown text, one tool call each,
rotating Bash, Read, Edit, Write, Grep and TodoWrite, outputs of 2-40 KB, one error in seven,
hook progress lines) and imports it with the real importer into a throwaway SQLite database.
Then times, median of `runs`:

- bare SQL: the viewer's queries with their rows fetched, nothing built;
- old pprint: what the old example page did per message (`pprint|truncatechars:4000` over
  every payload and `pprint|truncatechars:500` over every tool input and result);
- build: `build_trajectory` (the tree, Markdown, highlighting, previews);
- page: GET of the example page through the whole stack (middleware, review panel).

Prints milliseconds, ratios, queries per page and the page's size against the outputs it
leaves out (target: the page in well under a second; it does not ship the outputs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from django_env import setup  # noqa: E402 - the project's imports wait for Django

TOOLS = ["Bash", "Read", "Edit", "Write", "Grep", "TodoWrite"]
OLD_PAGE = (
    "{% for m in messages %}<pre>{{ m.payload|pprint|truncatechars:4000 }}</pre>{% endfor %}"
    "{% for c in calls %}<td>{{ c.input|pprint|truncatechars:500 }}</td>"
    "<td>{{ c.result|pprint|truncatechars:500 }}</td>{% endfor %}"
)


# --- the session -----------------------------------------------------------------------------


def _call(n: int) -> tuple[str, dict[str, Any], str]:
    name = TOOLS[n % len(TOOLS)]
    body = "\n".join(f"    value_{n}_{i} = compute({i})  # line {i}" for i in range(40 + n % 400))
    inputs: dict[str, dict[str, Any]] = {
        "Bash": {"command": f"pytest tests/test_{n}.py -x -q", "description": "Run the tests"},
        "Read": {"file_path": f"/work/src/module_{n}.py"},
        "Edit": {
            "file_path": f"/work/src/module_{n}.py",
            "old_string": "a - b",
            "new_string": "a + b",
        },
        "Write": {"file_path": f"/work/src/new_{n}.py", "content": f"def f():\n{body}\n"},
        "Grep": {"pattern": f"def case_{n}", "path": "/work/src"},
        "TodoWrite": {"todos": [{"content": f"step {i}", "status": "pending"} for i in range(5)]},
    }
    return name, inputs[name], body


def _lines(n: int, at: datetime, session: str) -> list[dict[str, Any]]:
    name, tool_input, output = _call(n)
    envelope = {"sessionId": session, "cwd": "/work", "version": "2.1.38", "userType": "external"}
    blocks = [
        {"type": "thinking", "thinking": f"Turn {n}: check the next module. " * 8},
        {"type": "text", "text": f"Checking **module {n}**:\n\n- reads `x`\n- then `y`"},
        {"type": "tool_use", "id": f"toolu_{n:05d}", "name": name, "input": tool_input},
    ]
    usage = {"input_tokens": 3, "output_tokens": 120, "cache_read_input_tokens": 20000 + n * 90}
    error = n % 7 == 3
    result = {"type": "tool_result", "tool_use_id": f"toolu_{n:05d}", "content": output}
    return [
        envelope | {"type": "assistant", "uuid": f"a-{n}", "timestamp": _ts(at),
                    "message": {"id": f"msg_{n:05d}", "role": "assistant",
                                "model": "claude-sonnet-4-5", "content": blocks, "usage": usage}},
        envelope | {"type": "progress", "uuid": f"p-{n}", "timestamp": _ts(at),
                    "data": {"type": "hook_progress", "hookEvent": "PreToolUse"}},
        envelope | {"type": "user", "uuid": f"u-{n}", "timestamp": _ts(at + timedelta(seconds=2)),
                    "message": {"role": "user", "content": [result | {"is_error": error}]},
                    "toolUseResult": {"stdout": output, "stderr": "", "interrupted": False}},
    ]  # fmt: skip


def _ts(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def write_session(folder: Path, turns: int) -> Path:
    session, start = "bench-trajectory-session", datetime(2026, 1, 1, tzinfo=UTC)
    prompt = {"type": "user", "uuid": "prompt", "sessionId": session, "timestamp": _ts(start),
              "message": {"role": "user", "content": "Fix every failing module"}}  # fmt: skip
    path = folder / f"{session}.jsonl"
    with path.open("w") as out:
        out.write(json.dumps(prompt) + "\n")
        for n in range(turns):
            for line in _lines(n, start + timedelta(seconds=5 * n + 1), session):
                out.write(json.dumps(line) + "\n")
    return path


# --- measuring -------------------------------------------------------------------------------


def median_ms(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    data = setup("trainingdash-bench-trajectory-")
    from django.conf import settings
    from django.test.utils import override_settings

    # Pages name their static files; the manifest only exists after collectstatic.
    plain = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    }
    try:
        with override_settings(STORAGES=plain):
            run(data, args.turns, args.runs)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def run(data: Path, turns: int, runs: int) -> None:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.template import engines
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from collection.importers import import_file
    from collection.models import Execution
    from collection.roles import VIEWER, assign_role, sync_roles
    from collection.viewer import build_trajectory
    from collection.viewer.build import _calls, _payloads, _rows

    report = import_file(write_session(Path(tempfile.mkdtemp(dir=data)), turns))
    execution = Execution.objects.get(session_id=report.sessions[0].session_id)
    example = execution.training_example
    sync_roles()
    user = User.objects.create_user("bench", password="bench-password")
    assign_role(user, VIEWER)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    url = reverse("collection-example-detail", args=[example.pk])
    old = engines["django"].from_string(OLD_PAGE)

    def bare_sql() -> None:
        list(_calls(execution))
        list(_payloads(execution))
        _rows(execution, set())

    def old_pprint() -> str:
        messages, calls = execution.messages.all(), execution.tool_calls.all()
        return old.render({"messages": messages, "calls": calls})

    def page() -> bytes:
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        return response.content

    page()  # warm caches (templates, lexers, session)
    with CaptureQueriesContext(connection) as queries:
        html = page()
    queries_per_page = len(queries)
    times = {
        "bare SQL": median_ms(bare_sql, runs),
        "old pprint": median_ms(old_pprint, runs),
        "build": median_ms(lambda: build_trajectory(execution, example=example), runs),
        "page": median_ms(page, runs),
    }
    outputs = sum(len(str(c.result or "")) for c in execution.tool_calls.all())
    calls = execution.tool_calls.count()
    print(f"{turns}-turn imported session: {execution.messages.count()} messages, "
          f"{calls} tool calls, {outputs / 1e6:.1f} MB of tool output")  # fmt: skip
    for name, ms in times.items():
        print(f"  {name:<11} {ms:8.1f} ms")
    print(f"  page / bare SQL   {times['page'] / times['bare SQL']:6.1f}x")
    print(f"  page / old pprint {times['page'] / times['old pprint']:6.2f}x")
    print(f"  build / bare SQL  {times['build'] / times['bare SQL']:6.1f}x")
    print(f"  queries per page  {queries_per_page}")
    print(f"  page size {len(html) / 1e3:.0f} kB = {len(html) / outputs:.2f} of the tool output; "
          f"old trajectory alone {len(old_pprint()) / 1e3:.0f} kB")  # fmt: skip


if __name__ == "__main__":
    main()
