"""What a tool call's card shows, per tool: its key argument and the kind of card.

One registry, `TOOLS`, keyed by tool name; tools it doesn't know get `GENERIC`, which looks
for the usual argument names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KEY_ARG_CHARS = 300


@dataclass(frozen=True)
class ToolView:
    """How a tool's card looks: `card` picks the template branch, `key_args` are the input
    keys whose first non-empty value is the card's headline."""

    card: str = "generic"
    key_args: tuple[str, ...] = ("command", "file_path", "path", "pattern", "url", "query")

    def key_arg(self, tool_input: dict[str, Any]) -> str:
        """The argument that says what the call does, on one line."""
        for key in self.key_args:
            value = tool_input.get(key)
            if isinstance(value, str | int | float) and str(value).strip():
                line = " ".join(str(value).split())
                return line[:KEY_ARG_CHARS] + ("…" if len(line) > KEY_ARG_CHARS else "")
        return ""


GENERIC = ToolView()

TOOLS: dict[str, ToolView] = {
    "Bash": ToolView("bash", ("command",)),
    "BashOutput": ToolView("generic", ("bash_id", "shell_id")),
    "KillShell": ToolView("generic", ("shell_id",)),
    "Read": ToolView("file", ("file_path",)),
    "NotebookRead": ToolView("file", ("notebook_path",)),
    "Edit": ToolView("edit", ("file_path",)),
    "MultiEdit": ToolView("edit", ("file_path",)),
    "Write": ToolView("write", ("file_path",)),
    "NotebookEdit": ToolView("generic", ("notebook_path",)),
    "Grep": ToolView("generic", ("pattern", "path")),
    "Glob": ToolView("generic", ("pattern", "path")),
    "LS": ToolView("generic", ("path",)),
    "WebFetch": ToolView("generic", ("url",)),
    "WebSearch": ToolView("generic", ("query",)),
    "Task": ToolView("agent", ("description", "subagent_type")),
    "Agent": ToolView("agent", ("description", "subagent_type")),
    "TodoWrite": ToolView("todo", ()),
    "Skill": ToolView("generic", ("skill", "command")),
    "SlashCommand": ToolView("generic", ("command",)),
    "ExitPlanMode": ToolView("generic", ("plan",)),
    # Other agents' tools, as their importers name them (SWE-agent, OpenHands).
    "bash": ToolView("bash", ("command",)),
    "execute_bash": ToolView("bash", ("command",)),
    "str_replace_editor": ToolView("generic", ("path", "command")),
}


def tool_view(name: str) -> ToolView:
    return TOOLS.get(name, GENERIC)
