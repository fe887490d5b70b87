"""Building real scripted sessions for tests: a sandbox workspace and its options."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from claude_agent_sdk import ClaudeAgentOptions

from collection.scripted_model.runtime import scripted_env
from collection.sessions.spec import JobSpec

TOOLS = ["Read", "Edit", "Write", "Bash", "Glob", "Grep"]

BUGGY = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\nassert add(2, 3) == 5, 'add is broken'\nprint('ok')\n"
# The interpreter by path: a shim (pyenv) may print noise or wait on its lock.
PYTHON = shlex.quote(sys.executable)
VERIFIER = f"{PYTHON} test_calc.py"

FIX_SCRIPT: list[dict[str, Any]] = [
    {"thinking": "The test fails; read the module first."},
    {"tool": "Read", "input": {"file_path": "calc.py"}},
    {
        "tool": "Edit",
        "input": {"file_path": "calc.py", "old_string": "a - b", "new_string": "a + b"},
    },
    {"tool": "Bash", "input": {"command": VERIFIER}},
    {"text": "Fixed add(): it subtracted instead of adding. The test passes."},
]


def make_workspace(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "calc.py").write_text(BUGGY)
    (root / "test_calc.py").write_text(TEST)
    return root


def scripted_options(
    cwd: Path, policy: str = "script", seed: int = 0, script: Any = None, **kw: Any
) -> ClaudeAgentOptions:
    env = scripted_env(policy, seed, script, cwd=cwd, config_dir=cwd.parent / f"{cwd.name}-cfg")
    return ClaudeAgentOptions(cwd=str(cwd), env=env, allowed_tools=TOOLS, **kw)


# The fix, with a verifier run long enough to signal or kill a worker in the middle of.
SLOW_FIX: list[dict[str, Any]] = [
    *FIX_SCRIPT[:3],
    {"tool": "Bash", "input": {"command": f"sleep 6; {VERIFIER}"}},
    FIX_SCRIPT[-1],
]


def fix_spec(workspace: Path, **kw: Any) -> JobSpec:
    """A background job fixing `make_workspace`'s bug with FIX_SCRIPT, checked by VERIFIER;
    `kw` overrides any field."""
    fields = {
        "prompt": "Fix the failing test",
        "allowed_tools": TOOLS,
        "script": FIX_SCRIPT,
        "workspace": str(workspace),
        "verifier": VERIFIER,
    }
    return JobSpec(**(fields | kw))
