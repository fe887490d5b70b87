"""Policies decide the next assistant turn. Each is a pure function of (seed, params, request).

Add one by subclassing ``Policy`` and listing it in ``POLICIES``.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from .request import ModelRequest, SessionConfig
from .script import Script, parse_script, plan, render, session_salt, subagent_key
from .turns import ScriptedModelError, Turn


class Policy:
    """Base class: ``next_turn`` returns a ``Turn``, or raises ``ScriptedModelError`` to
    answer with an API error instead."""

    description: ClassVar[str] = ""

    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.params: dict[str, Any] = dict(config.params)

    def next_turn(self, request: ModelRequest) -> Turn:
        """The assistant's next turn for this request (the turn index is ``request.turn``).

        Must depend only on the seed, the params and the request: no state between calls.
        """
        raise NotImplementedError


def last_prompt(request: ModelRequest) -> str:
    """The user's words in the newest user message, without the CLI's system reminders."""
    for message in reversed(request.messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        words = [
            b.get("text", "")
            for b in blocks or []
            if b.get("type") == "text"
            and not b.get("text", "").lstrip().startswith("<system-reminder>")
        ]
        if words:
            return "\n".join(words).strip()
    return ""


def harmless_tool(request: ModelRequest, n: int) -> tuple[str, dict[str, Any]]:
    if "Glob" in request.tool_names:
        return "Glob", {"pattern": "*"}
    return "Bash", {"command": f"echo step {n}", "description": "Print a progress marker"}


class EchoPolicy(Policy):
    description = "One text turn that repeats the prompt (params: text)."

    def next_turn(self, request: ModelRequest) -> Turn:
        text = self.params.get("text") or f"Scripted reply to: {last_prompt(request)[:400]}"
        return Turn.text(text)


class ScriptPolicy(Policy):
    description = "Plays the session's script; sub-agents play the steps their marker names."

    def script(self) -> Script:
        if self.config.script is None:
            raise ScriptedModelError(400, "invalid_request_error", "script policy needs a script")
        return parse_script(self.config.script)

    def next_turn(self, request: ModelRequest) -> Turn:
        script = self.script()
        salt = session_salt(self.config.seed, self.config.script or self.params)
        if key := subagent_key(request):
            script, salt = script.subagent_script(key), f"{salt}:{key}"
        steps = plan(script, salt)
        step = steps[min(request.turn, len(steps) - 1)]
        return render(step, request, random.Random(f"{salt}:{request.turn}"))


class ToolErrorPolicy(Policy):
    description = "Reads a file that does not exist, then explains and stops."

    def next_turn(self, request: ModelRequest) -> Turn:
        missing = f"{request.cwd}/missing-{self.config.seed}.txt"
        if request.turn == 0:
            return Turn.tool(
                request.block_id("toolu"),
                "Read",
                {"file_path": missing},
                text="Let me read the notes file first.",
            )
        return Turn.text(f"{missing} does not exist, so there is nothing to summarise.")


class MaxTurnsPolicy(Policy):
    description = "Calls a harmless tool on every turn, so the session runs into max_turns."

    def next_turn(self, request: ModelRequest) -> Turn:
        name, tool_input = harmless_tool(request, request.turn)
        return Turn.tool(request.block_id("toolu"), name, tool_input, text="Checking again.")


class SubagentPolicy(ScriptPolicy):
    description = (
        "Delegates to a sub-agent (params: subagent_type, command) which runs a "
        "command and reports; then the coordinator finishes."
    )

    def script(self) -> Script:
        if self.config.script is not None:
            return super().script()
        command = self.params.get("command", "ls -la")
        delegate = {
            "description": "Inspect the workspace",
            "prompt": f"Run `{command}` in the workspace and report what you see.",
            "subagent_type": self.params.get("subagent_type", "general-purpose"),
        }
        return parse_script(
            [
                {
                    "thinking": "A sub-agent can inspect the workspace while I wait.",
                    "tool": "Agent",
                    "input": delegate,
                    "subagent": [
                        {
                            "tool": "Bash",
                            "input": {"command": command, "description": "Inspect the workspace"},
                        },
                        {"text": "Report: the command ran; the workspace is listed above."},
                    ],
                },
                {"text": "The sub-agent inspected the workspace and reported back. Done."},
            ]
        )


class ModelErrorPolicy(Policy):
    description = (
        "Answers with an API error (params: status=500, error_type=api_error, "
        "after=0 harmless turns first)."
    )

    def next_turn(self, request: ModelRequest) -> Turn:
        if request.turn < int(self.params.get("after", 0)):
            name, tool_input = harmless_tool(request, request.turn)
            return Turn.tool(request.block_id("toolu"), name, tool_input)
        raise ScriptedModelError(
            int(self.params.get("status", 500)),
            str(self.params.get("error_type", "api_error")),
            str(self.params.get("message", "Scripted model error")),
        )


class SlowPolicy(Policy):
    description = "Waits params.seconds (default 30) before answering like echo."

    def next_turn(self, request: ModelRequest) -> Turn:
        request.wait(float(self.params.get("seconds", 30)))
        return Turn.text(f"Sorry for the wait. Scripted reply to: {last_prompt(request)[:200]}")


POLICIES: dict[str, type[Policy]] = {
    "echo": EchoPolicy,
    "simple": EchoPolicy,
    "script": ScriptPolicy,
    "tool_error": ToolErrorPolicy,
    "max_turns": MaxTurnsPolicy,
    "subagent": SubagentPolicy,
    "model_error": ModelErrorPolicy,
    "slow": SlowPolicy,
}
