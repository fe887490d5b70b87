"""Checks a manifest against its folder before anything runs.

Besides the layout (name, category, workspace, placeholders), the template's scripts are
rehearsed against the workspace without a model: every Read must find its file, every Edit
its exact `old_string` (once), and the CLI's read-before-edit rule must hold in each agent's
context. A script that would fail in a real session fails here, naming the step.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import TypeAdapter, ValidationError

from collection.sessions.chains import ChainError, ConversationChain

from .manifest import CATEGORIES, ScriptStep, TemplateError, TemplateManifest, field_name

SUBAGENT_TOOLS = ("Agent", "Task")
Problem = tuple[str, str]  # (field, what is wrong)
_steps_adapter = TypeAdapter(list[ScriptStep])


def check_layout(
    manifest: TemplateManifest, folder: Path, *, category_folder: str | None
) -> Iterator[Problem]:
    if category_folder is not None and manifest.name != folder.name:
        yield "name", f"{manifest.name!r} must equal the template's folder name {folder.name!r}"
    if manifest.category not in CATEGORIES:
        yield "category", f"{manifest.category!r} is not one of {', '.join(CATEGORIES)}"
    elif category_folder is not None and manifest.category != category_folder:
        yield "category", f"{manifest.category!r} but the template sits in {category_folder!r}/"
    if not (folder / "workspace").is_dir():
        yield "workspace", f"no workspace/ folder in {folder}"
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            yield "workspace", f"{path.relative_to(folder)} is a symbolic link; copy the file in"
    if "{checks}" in manifest.verifier and not (folder / "checks").is_dir():
        yield "verifier", "uses {checks} but the template has no checks/ folder"


def check_scripts(manifest: TemplateManifest, folder: Path) -> Iterator[Problem]:
    """Rehearse the template's scripts (the session's, or each chain step's) on the workspace."""
    if manifest.chain and manifest.script:
        yield "script", "give either script (one session) or chain (one script per step)"
        return
    if manifest.chain and manifest.agents:
        yield "chain", "a chain template cannot also define agents"
        return
    if manifest.category == "multi_agent" and not manifest.agents:
        yield "agents", "a multi_agent template must define its agents"
    rehearsal = Rehearsal(folder / "workspace", manifest)
    if manifest.chain:
        yield from _check_chain(manifest, rehearsal)
    elif not manifest.script:
        yield "script", "Field required (or give a chain)"
    else:
        yield from rehearsal.play(manifest.script, "script", context=_Context())
        tool_steps = sum(1 for s in manifest.script if s.tool)
        if manifest.max_turns <= tool_steps:
            yield "max_turns", f"{manifest.max_turns} turns; the script needs {tool_steps + 1}"


def _check_chain(manifest: TemplateManifest, rehearsal: Rehearsal) -> Iterator[Problem]:
    assert manifest.chain is not None
    try:
        ordered = ConversationChain(name=manifest.name, steps=manifest.chain).ordered_steps()
    except (ChainError, ValidationError) as exc:
        yield "chain", str(exc)
        return
    index = {step.name: i for i, step in enumerate(manifest.chain)}
    for step in ordered:
        where = f"chain[{index[step.name]}].extra.script"
        try:
            steps = _steps_adapter.validate_python(step.extra.get("script"))
        except ValidationError as exc:
            err = exc.errors()[0]
            yield field_name((where, *err["loc"])), err["msg"]
            continue
        allowed = set(step.allowed_tools) or None
        yield from rehearsal.play(steps, where, context=_Context(tools=allowed))


@dataclass
class _Context:
    """One agent's view: which files it has read, and which tools it may use."""

    tools: set[str] | None = None
    read: set[str] = field(default_factory=set)


class Rehearsal:
    """Plays scripts against an in-memory copy of the workspace's text files."""

    HANDLERS = {"Read": "_read", "Edit": "_edit", "Write": "_write", "Bash": "_bash"}

    def __init__(self, workspace: Path, manifest: TemplateManifest) -> None:
        self.files: dict[str, str] = {}
        if workspace.is_dir():
            for path in workspace.rglob("*"):
                if path.is_file():
                    try:
                        self.files[path.relative_to(workspace).as_posix()] = path.read_text()
                    except UnicodeDecodeError:
                        self.files[path.relative_to(workspace).as_posix()] = ""
        self.agents = manifest.agents
        self.shell_ran = False  # after a Bash step, files may exist that we cannot know about

    def play(self, steps: list[ScriptStep], where: str, *, context: _Context) -> Iterator[Problem]:
        for i, step in enumerate(steps):
            at = f"{where}[{i}]"
            if step.tool is None:
                if step.subagent:
                    yield f"{at}.subagent", "only an Agent step can start a sub-agent"
                continue
            if context.tools is not None and step.tool not in context.tools:
                yield f"{at}.tool", f"{step.tool} is not among this agent's tools"
            handler = self.HANDLERS.get(step.tool)
            if step.tool in SUBAGENT_TOOLS:
                yield from self._agent(step, at)
            elif step.subagent:
                yield f"{at}.subagent", "only an Agent step can start a sub-agent"
            elif handler:
                yield from getattr(self, handler)(step.input, at, context)

    def _path(self, tool_input: dict[str, Any], at: str) -> tuple[str | None, Problem | None]:
        raw = tool_input.get("file_path")
        if not isinstance(raw, str) or not raw:
            return None, (f"{at}.input.file_path", "Field required")
        raw = raw.removeprefix("{cwd}/")
        path = PurePosixPath(raw)
        if path.is_absolute():
            return None, None  # outside what we can rehearse
        if ".." in path.parts:
            return None, (f"{at}.input.file_path", f"{raw} leaves the workspace")
        return path.as_posix(), None

    def _missing(self, path: str) -> bool:
        return path not in self.files and not self.shell_ran

    def _read(self, tool_input: dict[str, Any], at: str, ctx: _Context) -> Iterator[Problem]:
        path, problem = self._path(tool_input, at)
        if problem:
            yield problem
        elif path and self._missing(path):
            yield f"{at}.input.file_path", f"{path} is not in the workspace at this step"
        elif path:
            ctx.read.add(path)

    def _edit(self, tool_input: dict[str, Any], at: str, ctx: _Context) -> Iterator[Problem]:
        path, problem = self._path(tool_input, at)
        old, new = tool_input.get("old_string"), tool_input.get("new_string")
        if problem:
            yield problem
            return
        if not isinstance(old, str):
            yield f"{at}.input.old_string", "Field required (a string)"
            return
        if not isinstance(new, str):
            yield f"{at}.input.new_string", "Field required (a string)"
            return
        if path is None or (path not in self.files and self.shell_ran):
            return
        if path not in self.files:
            yield f"{at}.input.file_path", f"{path} is not in the workspace at this step"
        elif path not in ctx.read:
            yield f"{at}.input.file_path", f"{path} is edited before this agent has read it"
        elif old == new or not old:
            yield f"{at}.input.old_string", "must be non-empty and differ from new_string"
        else:
            count = self.files[path].count(old)
            if count == 0 or (count > 1 and not tool_input.get("replace_all")):
                found = "not found" if count == 0 else f"found {count} times"
                yield f"{at}.input.old_string", f"{found} in {path} at this step"
            else:
                self.files[path] = self.files[path].replace(old, new)

    def _write(self, tool_input: dict[str, Any], at: str, ctx: _Context) -> Iterator[Problem]:
        path, problem = self._path(tool_input, at)
        if problem:
            yield problem
        elif not isinstance(tool_input.get("content"), str):
            yield f"{at}.input.content", "Field required (a string)"
        elif path and path in self.files and path not in ctx.read:
            yield f"{at}.input.file_path", f"{path} is overwritten before this agent read it"
        elif path:
            self.files[path] = tool_input["content"]
            ctx.read.add(path)

    def _bash(self, tool_input: dict[str, Any], at: str, ctx: _Context) -> Iterator[Problem]:
        if not isinstance(tool_input.get("command"), str) or not tool_input["command"].strip():
            yield f"{at}.input.command", "Field required (a shell command)"
        self.shell_ran = True

    def _agent(self, step: ScriptStep, at: str) -> Iterator[Problem]:
        kind = step.input.get("subagent_type")
        if not isinstance(step.input.get("prompt"), str):
            yield f"{at}.input.prompt", "Field required (what the sub-agent is asked)"
        if self.agents is not None and kind not in self.agents:
            yield f"{at}.input.subagent_type", f"{kind!r} is not one of the template's agents"
        if not step.subagent:
            yield f"{at}.subagent", "an Agent step needs the sub-agent's steps"
            return
        agent = (self.agents or {}).get(kind) if isinstance(kind, str) else None
        tools = set(agent.tools) if agent and agent.tools is not None else None
        yield from self.play(step.subagent, f"{at}.subagent", context=_Context(tools=tools))


def problems(
    manifest: TemplateManifest, folder: Path, manifest_file: Path, *, category_folder: str | None
) -> list[TemplateError]:
    found = [*check_layout(manifest, folder, category_folder=category_folder)]
    if not any(where == "workspace" for where, _ in found):
        found += check_scripts(manifest, folder)
    return [TemplateError(problem, file=manifest_file, field=where) for where, problem in found]


# --- the verifier's programs -------------------------------------------------------------------

# Words after which the shell expects a command, and commands the shell runs itself (never
# looked up on PATH).
COMMAND_STARTS = frozenset(
    [";", "&&", "||", "|", "&", "|&", "(", ")", ";;", "!", "{", "}", "if", "then", "else"]
    + ["elif", "fi", "while", "until", "do", "done", "time"]
)
BUILTINS = frozenset(
    [".", ":", "[", "cd", "command", "echo", "eval", "exec", "exit", "export", "false"]
    + ["printf", "pwd", "read", "return", "set", "shift", "source", "test", "true", "type"]
    + ["ulimit", "umask", "unset", "wait"]
)
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def missing_programs(command: str, workdir: Path) -> list[str]:
    """The programs a shell command runs that can't be found on this machine: a name not on
    PATH, or a path (relative ones from `workdir`, where the verifier runs) that is no file.
    Raises `ValueError` when the command can't be split as the shell would (unbalanced
    quotes)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    missing: list[str] = []
    starts = True  # the next word is a command's name
    for word in lexer:
        if word in COMMAND_STARTS:
            starts = True
            continue
        if not starts or ASSIGNMENT.match(word):  # arguments; FOO=1 before the command
            continue
        starts = False
        if word not in BUILTINS and not _findable(word, workdir) and word not in missing:
            missing.append(word)
    return missing


def _findable(program: str, workdir: Path) -> bool:
    if "/" not in program:
        return shutil.which(program) is not None
    path = workdir / program  # an absolute `program` replaces workdir
    return path.is_file()


def verifier_warnings(verifier: str, workdir: Path) -> list[str]:
    """What will make the verifier fail whatever the agent does, in words for the template's
    page: programs this machine doesn't have (a worker on another machine may)."""
    try:
        missing = missing_programs(verifier, workdir)
    except ValueError as exc:
        return [f"the verifier command can't be read as a shell command: {exc}"]
    return [
        f"the verifier runs {program!r}, which is not installed here (not found on PATH or "
        'in the workspace): every session will fail verification with "not found"'
        for program in missing
    ]
