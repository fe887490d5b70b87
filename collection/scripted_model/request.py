"""What the server knows about a request: the session's choices and the conversation so far.

Every choice travels with the request (headers the CLI forwards from ANTHROPIC_CUSTOM_HEADERS,
or the API key), so the server keeps no state between requests.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from functools import cached_property
from pathlib import Path
from typing import Any

from .turns import RequestAborted, stable_id

POLICY_HEADER = "X-Scripted-Policy"
SEED_HEADER = "X-Scripted-Seed"
SCRIPT_HEADER = "X-Scripted-Script"  # base64url of zlib-compressed JSON
SCRIPT_FILE_HEADER = "X-Scripted-Script-File"  # path to a JSON file on this machine
PARAMS_HEADER = "X-Scripted-Params"  # JSON object of policy knobs
CWD_HEADER = "X-Scripted-Cwd"  # resolves relative paths in scripts
API_KEY_PREFIX = "scripted"  # ANTHROPIC_API_KEY (or _AUTH_TOKEN) = scripted:<policy>:<seed>
DEFAULT_POLICY = "echo"

Headers = Mapping[str, str] | Message  # http.server hands over a case-insensitive Message

_CWD_IN_PROMPT = re.compile(r"Primary working directory: (\S+)")


def encode_script(script: Any) -> str:
    raw = json.dumps(script, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode()


def decode_script(value: str) -> Any:
    return json.loads(zlib.decompress(base64.urlsafe_b64decode(value.encode())))


@dataclass(frozen=True)
class SessionConfig:
    """The per-session choices: which policy, which seed, and the policy's inputs."""

    policy: str = DEFAULT_POLICY
    seed: int = 0
    script: Any = None
    params: Mapping[str, Any] = field(default_factory=dict)
    cwd: str | None = None

    @classmethod
    def from_headers(cls, headers: Headers) -> SessionConfig:
        bearer = (headers.get("Authorization") or "").removeprefix("Bearer ")
        key_parts = (headers.get("x-api-key") or bearer).split(":")
        from_key = key_parts[1:] if key_parts[0] == API_KEY_PREFIX else []
        policy = headers.get(POLICY_HEADER) or (from_key[0] if from_key else DEFAULT_POLICY)
        seed = headers.get(SEED_HEADER) or (from_key[1] if len(from_key) > 1 else "0")
        return cls(
            policy=policy.strip(),
            seed=int(seed),
            script=_script_from(headers),
            params=json.loads(headers.get(PARAMS_HEADER) or "{}"),
            cwd=headers.get(CWD_HEADER) or None,
        )


def _script_from(headers: Headers) -> Any:
    if inline := headers.get(SCRIPT_HEADER):
        return decode_script(inline)
    if path := headers.get(SCRIPT_FILE_HEADER):
        return json.loads(Path(path).read_text())
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = [b.get("text", "") for b in content or [] if isinstance(b, dict)]
    return "\n".join(p for p in parts if p)


@dataclass
class ModelRequest:
    """One POST /v1/messages body plus the session's choices."""

    body: dict[str, Any]
    config: SessionConfig
    session_id: str = ""
    stop_event: threading.Event = field(default_factory=threading.Event)

    @property
    def model(self) -> str:
        return str(self.body.get("model") or "claude-scripted")

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @cached_property
    def turn(self) -> int:
        """How many assistant turns came before this one in the conversation."""
        return sum(1 for m in self.messages if m.get("role") == "assistant")

    @cached_property
    def tool_names(self) -> tuple[str, ...]:
        return tuple(t.get("name", "") for t in self.body.get("tools") or [])

    @cached_property
    def first_user_text(self) -> str:
        first = next((m for m in self.messages if m.get("role") == "user"), {})
        return _text_of(first.get("content"))

    @cached_property
    def cwd(self) -> str:
        if self.config.cwd:
            return self.config.cwd
        match = _CWD_IN_PROMPT.search(json.dumps([self.body.get("system"), self.messages]))
        return match.group(1) if match else "."

    def tool_results(self) -> list[tuple[str, bool]]:
        """(text, is_error) of every tool result so far, oldest first."""
        results = []
        for message in self.messages:
            if message.get("role") != "user" or isinstance(message.get("content"), str):
                continue
            for block in message.get("content") or []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    results.append((_text_of(block.get("content")), bool(block.get("is_error"))))
        return results

    def block_id(self, prefix: str, index: int = 0) -> str:
        return stable_id(
            prefix, self.config.seed, self.session_id, self.first_user_text, self.turn, index
        )

    def wait(self, seconds: float) -> None:
        """Sleep, but give up as soon as the server stops."""
        if self.stop_event.wait(seconds):
            raise RequestAborted("server stopping")
