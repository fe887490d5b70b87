"""The seed document's Python API for plain scripts: `claude_code_sdk` becomes `trainingdash.sdk`.

    import asyncio
    from trainingdash.sdk import query, ClaudeCodeOptions
    from trainingdash.sdk.training_data import TaskDefinition, SQLiteTrainingStorage
    from trainingdash.sdk.training_collector import TrainingDataCollector

    storage = SQLiteTrainingStorage("training_data.db")
    ...

Thin re-exports, no logic: each name is the service the dashboard uses (`SEED_MODULES` says
where each seed module's names live). Importing this package configures Django for a script
(`collection.storage.configure_for_script`); the script's first storage chooses its database.

`query` is the Claude Agent SDK's own. `ClaudeCodeOptions` builds `ClaudeAgentOptions` on the
embedded default model, the scripted model, offline (`collection.sessions.collector.
default_options`; `policy=`, `seed=`, `script=` choose what it plays). For real Claude, use
`claude_agent_sdk.ClaudeAgentOptions` with your API key instead.
"""

from __future__ import annotations

import re

from collection.storage import configure_for_script

configure_for_script()  # before the re-exports below import Django models

from claude_agent_sdk import query  # noqa: E402

from collection.sessions.collector import default_options as ClaudeCodeOptions  # noqa: E402

# The seed's modules and ours. The seed keeps everything under `claude_code_sdk`; so do we,
# under `trainingdash.sdk`, with the same module names.
SEED_MODULES = {
    "claude_code_sdk": "trainingdash.sdk",
    "claude_code_sdk.training_data": "trainingdash.sdk.training_data",
    "claude_code_sdk.training_collector": "trainingdash.sdk.training_collector",
    "claude_code_sdk.training_generator": "trainingdash.sdk.training_generator",
    "claude_code_sdk.training_export": "trainingdash.sdk.training_export",
    "claude_code_sdk.conversation_chains": "trainingdash.sdk.conversation_chains",
}

_IMPORT = re.compile(r"^(\s*from\s+)([\w.]+)(\s+import\b)", re.MULTILINE)


def translate_imports(source: str) -> str:
    """Seed code with its `from claude_code_sdk... import` lines pointed at our modules; an
    unknown seed module is an error naming it."""

    def ours(match: re.Match[str]) -> str:
        module = match.group(2)
        if module.split(".")[0] != "claude_code_sdk":
            return match.group(0)
        if module not in SEED_MODULES:
            raise ValueError(f"no counterpart for the seed's module {module!r}")
        return f"{match.group(1)}{SEED_MODULES[module]}{match.group(3)}"

    return _IMPORT.sub(ours, source)


__all__ = ["SEED_MODULES", "ClaudeCodeOptions", "query", "translate_imports"]
