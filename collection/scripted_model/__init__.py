"""A deterministic, offline stand-in for the Anthropic Messages API (loopback only).

The bundled Claude Code CLI talks to it through ANTHROPIC_BASE_URL and runs real tools, so
sessions are real in everything but the model. Standard library only: no Django here.

A session picks its behaviour with headers the CLI forwards from ANTHROPIC_CUSTOM_HEADERS
(``scripted_env`` writes them): X-Scripted-Policy, X-Scripted-Seed, X-Scripted-Script
(base64url zlib JSON) or X-Scripted-Script-File (a path), X-Scripted-Params (JSON) and
X-Scripted-Cwd. Without headers, an API key ``scripted:<policy>:<seed>`` selects policy and
seed. The server keeps no state: every reply is a function of those and the request body.
"""

from __future__ import annotations

from .policies import POLICIES, Policy
from .request import ModelRequest, SessionConfig
from .runtime import ensure_server, scripted_env
from .script import Script, Step, parse_script
from .server import ScriptedModelServer
from .turns import ScriptedModelError, Turn

__all__ = [
    "POLICIES",
    "ModelRequest",
    "Policy",
    "Script",
    "ScriptedModelError",
    "ScriptedModelServer",
    "SessionConfig",
    "Step",
    "Turn",
    "ensure_server",
    "parse_script",
    "scripted_env",
]
