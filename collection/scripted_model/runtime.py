"""One scripted model per process, and the environment that points a CLI session at it."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .policies import POLICIES
from .request import (
    API_KEY_PREFIX,
    CWD_HEADER,
    PARAMS_HEADER,
    POLICY_HEADER,
    SCRIPT_FILE_HEADER,
    SCRIPT_HEADER,
    SEED_HEADER,
    encode_script,
)
from .script import parse_script
from .server import ScriptedModelServer

# Python's http.server refuses header lines over 64 KiB; leave room for the rest of the line.
MAX_INLINE_SCRIPT = 48_000

# Keep the CLI offline and quiet: no update checks, telemetry, error reports or retries
# (a scripted model never fails by accident, so a retry would only slow model_error down).
OFFLINE_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_MAX_RETRIES": "0",
}

_lock = threading.Lock()
_server: ScriptedModelServer | None = None
_server_pid = 0


def ensure_server() -> ScriptedModelServer:
    """This process's scripted model, started on first use (and again after a fork)."""
    global _server, _server_pid
    with _lock:
        if _server is None or _server_pid != os.getpid() or not _server.running:
            _server, _server_pid = ScriptedModelServer().start(), os.getpid()
        return _server


ScriptData = Sequence[Mapping[str, Any]] | Mapping[str, Any]


def scripted_env(
    policy: str,
    seed: int = 0,
    script: ScriptData | str | os.PathLike[str] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    config_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
) -> dict[str, str]:
    """The ``ClaudeAgentOptions(env=...)`` that runs a session against the scripted model.

    ``script`` is JSON data (sent inline) or the path of a JSON file (for big scripts).
    ``cwd`` resolves relative paths in the script (else the CLI's working directory is used).
    ``config_dir`` becomes CLAUDE_CONFIG_DIR and HOME, keeping the CLI's state out of ~/.claude
    and the user's shell start-up files out of the sandbox.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown scripted policy {policy!r}; known: {sorted(POLICIES)}")
    headers = {POLICY_HEADER: policy, SEED_HEADER: str(int(seed))}
    headers.update(_script_headers(script))
    if params:
        headers[PARAMS_HEADER] = json.dumps(params)
    if cwd is not None:
        headers[CWD_HEADER] = str(Path(cwd).resolve())
    env = {
        **OFFLINE_ENV,
        "ANTHROPIC_BASE_URL": base_url or ensure_server().base_url,
        "ANTHROPIC_API_KEY": f"{API_KEY_PREFIX}:{policy}:{int(seed)}",
        "ANTHROPIC_CUSTOM_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items()),
    }
    if config_dir is not None:
        Path(config_dir).mkdir(parents=True, exist_ok=True)
        env["CLAUDE_CONFIG_DIR"] = str(config_dir)
        # The CLI's Bash tool sources $HOME/.bashrc; a user's (pyenv init, prompts) makes
        # sessions slow and nondeterministic, so scripted sessions get an empty home.
        env["HOME"] = str(config_dir)
    return env


def _script_headers(script: ScriptData | str | os.PathLike[str] | None) -> dict[str, str]:
    if script is None:
        return {}
    if isinstance(script, str | os.PathLike):
        path = Path(script).resolve()
        parse_script(json.loads(path.read_text()))  # fail here, not inside the CLI session
        return {SCRIPT_FILE_HEADER: str(path)}
    parse_script(script)
    encoded = encode_script(script)
    if len(encoded) > MAX_INLINE_SCRIPT:
        raise ValueError(
            "script too large to send inline; write it to a JSON file and pass its path instead"
        )
    return {SCRIPT_HEADER: encoded}
