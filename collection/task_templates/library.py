"""The task template library: templates are folders of data, loaded from a list of directories.

    <dir>/<category>/<name>/manifest.json   what the agent is asked, the verifier, the script
    <dir>/<category>/<name>/workspace/      the tiny repository copied fresh into each sandbox
    <dir>/<category>/<name>/solution/       files that, laid over the workspace, solve it
    <dir>/<category>/<name>/checks/         hidden checks the verifier may use as {checks}

    library = TaskTemplateLibrary.load()   # built-ins, settings.TRAININGDASH_TEMPLATE_DIRS, uploads
    template = library.get("fix_failing_median")
    job = create_job(template.task_definition().get_or_create_task(),
                     template.job_spec(seed=3), kind=template.job_kind)

A job's spec names its template (`TaskTemplate.reference`) and keeps the placeholders of its
commands: the worker fills them with its own paths when it runs the job (`resolve_spec` in
`resolve.py`). Templates uploaded in the browser live in the shared store (`store.py`).

The seed's accessors (`TaskTemplateLibrary.get_debugging_tasks()` ...) work on the class too,
using the default library. A malformed user template is reported in `library.errors` while the
good ones load; `add_user_template()` validates a folder before copying anything.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
import types
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from django.conf import settings
from pydantic import ValidationError

from collection.calibration import Calibration, current
from collection.models import Difficulty
from collection.schema import TaskDefinition
from collection.scripted_model.script import MUTATING_TOOLS, parse_script
from collection.sessions.chains import ChainStep, ConversationChain
from collection.sessions.collector import VerifierResult, run_verifier
from collection.sessions.spec import JobSpec, SubagentSpec, TemplateRef

from .manifest import (
    DEFAULT_VARIATION,
    ScriptStep,
    TemplateError,
    TemplateManifest,
    Variation,
    errors_from,
)
from .store import fetch, stored_entries, stored_name
from .validation import problems, verifier_warnings

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
MANIFEST = "manifest.json"
JobKindName = Literal["session", "chain", "multi_agent"]
# Read-only look-arounds every session may use (a wandering scripted policy uses them too).
EXPLORATION_TOOLS = ("Glob", "Grep")


def expand(command: str, template_root: Path) -> str:
    """Fill a command's placeholders: {python} is this interpreter, {checks} the hidden checks,
    {workspace} the template's untouched workspace (the originals a run is compared with).

    The interpreter goes by path: a bare `python3` may be a pyenv shim that prints noise or
    waits on a lock.
    """
    values = {
        "{python}": sys.executable,
        "{checks}": str(template_root / "checks"),
        "{workspace}": str(template_root / "workspace"),
    }
    for placeholder, value in values.items():
        command = command.replace(placeholder, shlex.quote(value))
    return command


def expand_script(script: Any, template_root: Path) -> Any:
    """A scripted-model script (JSON) with the placeholders of its Bash commands filled, its
    sub-agents' scripts too."""
    if not isinstance(script, dict):
        return script
    steps = []
    for step in script.get("steps") or []:
        step = dict(step)
        command = (step.get("input") or {}).get("command")
        if step.get("tool") == "Bash" and isinstance(command, str):
            step["input"] = step["input"] | {"command": expand(command, template_root)}
        if "subagent" in step:
            step["subagent"] = expand_script(step["subagent"], template_root)
        steps.append(step)
    return script | {"steps": steps}


@dataclass(frozen=True)
class TaskTemplate:
    manifest: TemplateManifest
    root: Path
    builtin: bool = False
    # The sha256 of its archive in the shared store, for an uploaded template (store.py).
    digest: str | None = None

    # --- what it is ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def title(self) -> str:
        return self.manifest.title

    @property
    def description(self) -> str:
        return self.manifest.description

    @property
    def category(self) -> str:
        return self.manifest.category

    @property
    def difficulty(self) -> Difficulty:
        return self.manifest.difficulty

    @property
    def required_tools(self) -> list[str]:
        return list(self.manifest.required_tools)

    @property
    def prompt(self) -> str:
        return self.manifest.prompt

    @property
    def reference(self) -> TemplateRef:
        """What a job stores to find this template again, on any machine."""
        return TemplateRef(name=self.name, builtin=self.builtin, digest=self.digest)

    @property
    def workspace_dir(self) -> Path:
        return self.root / "workspace"

    @property
    def solution_dir(self) -> Path | None:
        solution = self.root / "solution"
        return solution if solution.is_dir() else None

    @property
    def checks_dir(self) -> Path:
        return self.root / "checks"

    @property
    def verifier(self) -> str:
        """The verifier command, ready for a shell in the sandbox (exit 0 == success), with
        this machine's paths (a job stores `manifest.verifier` and fills them where it runs)."""
        return expand(self.manifest.verifier, self.root)

    @cached_property
    def warnings(self) -> list[str]:
        """What is likely wrong but doesn't stop it loading (shown on the templates page):
        a verifier program this machine doesn't have."""
        return verifier_warnings(self.verifier, self.workspace_dir)

    @property
    def variation(self) -> Variation:
        """The default knobs: those of the template's difficulty, with what the manifest sets
        on top (a knob the manifest leaves out keeps the difficulty's value)."""
        default = DEFAULT_VARIATION[self.difficulty]
        if self.manifest.variation is None:
            return default
        return default.model_copy(update=self.manifest.variation.model_dump(exclude_unset=True))

    @property
    def job_kind(self) -> JobKindName:
        if self.manifest.agents:
            return "multi_agent"
        return "chain" if self.manifest.chain else "session"

    @cached_property
    def allowed_tools(self) -> list[str]:
        """The required tools, every tool a script (or sub-agent) uses, and Glob/Grep."""
        tools = [*self.manifest.required_tools]
        for step in self._all_steps():
            if step.tool:
                tools.append(step.tool)
        for agent in (self.manifest.agents or {}).values():
            tools += agent.tools or []
        for chain_step in self.manifest.chain or []:
            tools += chain_step.allowed_tools
        return _with_exploration(tools)

    def _all_steps(self) -> Iterator[ScriptStep]:
        scripts = [self.manifest.script or []]
        scripts += [_steps(step) for step in self.manifest.chain or []]
        pending = [s for script in scripts for s in script]
        while pending:
            step = pending.pop(0)
            yield step
            pending += step.subagent or []

    # --- what it runs --------------------------------------------------------------------------

    def task_definition(self) -> TaskDefinition:
        m = self.manifest
        return TaskDefinition(
            name=m.title,
            description=m.description,
            category=m.category,
            difficulty=m.difficulty,
            required_tools=m.required_tools,
            expected_outcomes=m.expected_outcomes,
            constraints=m.constraints,
            # This machine's command, for the seed's facades (which verify with the task's
            # verifier); a job runs its spec's, filled on the worker.
            metadata={"template": m.name, "verifier": self.verifier, "job_kind": self.job_kind},
            source_template=m.name,
        )

    def job_spec(
        self,
        seed: int = 0,
        backend: Literal["scripted", "claude"] = "scripted",
        variation: dict[str, float] | None = None,
        outcome: str | None = None,
        calibration: Calibration | None = None,
    ) -> JobSpec:
        """A job running this template.

        By default the scripted session's outcome comes from the calibration for the
        template's difficulty (`planned_outcome`), played with the template's knobs. A
        `variation` dict replaces the knobs (those it leaves out are 0, so `{}` plays the
        script straight) and then the outcome is "success" unless `outcome` names one.

        No path of this machine is in it: it names the template, and the commands keep their
        placeholders for the worker to fill (`resolve_spec`).
        """
        if variation is None and outcome is None:
            knobs = self.variation.model_copy(update={"give_up": 0.0})  # the calibration's job
            outcome = self.planned_outcome(seed, calibration)
        else:
            knobs = self.variation if variation is None else Variation.model_validate(variation)
            outcome = outcome or "success"
        m = self.manifest
        scripted = backend == "scripted"
        budget = (calibration or current()).budget_usd if outcome == "budget" else None
        return JobSpec(
            prompt=m.prompt,
            allowed_tools=self.allowed_tools,
            max_turns=m.max_turns,
            backend=backend,
            seed=seed,
            script=self._script(m.script, knobs, outcome) if scripted and m.script else None,
            template=self.reference,
            timeout_s=m.timeout_s,
            max_cost_usd=budget if scripted else None,
            verifier=m.verifier,
            chain=self._chain(knobs, outcome) if m.chain else None,
            agents=self._agents(),
        )

    def planned_outcome(self, seed: int, calibration: Calibration | None = None) -> str:
        """How the scripted session for `seed` ends: a pure function of (template, seed,
        calibration). Only a plan: the verifier still decides whether it succeeded."""
        return (calibration or current()).choose(
            self.difficulty, f"{self.name}:{seed}", self.supported_outcomes
        )

    @cached_property
    def supported_outcomes(self) -> tuple[str, ...]:
        """The outcomes the script can play (a chain plays them in its first step that edits;
        it has no cost limit of its own, so no `budget`)."""
        if self.manifest.chain:
            found = parse_script(self._script(self._outcome_step_script(), Variation()))
            return tuple(o for o in found.supported_outcomes() if o != "budget")
        return parse_script(
            self._script(self.manifest.script or [], Variation())
        ).supported_outcomes()

    def _outcome_step_script(self) -> list[ScriptStep]:
        chain = self.manifest.chain or []
        scripts = [_steps(step) for step in chain]
        return next((s for s in scripts if any(x.tool in MUTATING_TOOLS for x in s)), scripts[-1])

    def _agents(self) -> dict[str, SubagentSpec] | None:
        agents = self.manifest.agents
        if not agents:
            return None
        return {name: SubagentSpec(**agent.model_dump()) for name, agent in agents.items()}

    def _script(
        self, steps: list[ScriptStep], knobs: Variation, outcome: str = "success"
    ) -> dict[str, Any]:
        """The scripted model's JSON: steps (placeholders unfilled), knobs on every agent, the
        outcome on the top-level agent only (sub-agents do their part well)."""
        played = []
        for step in steps:
            raw = step.model_dump(exclude_none=True, exclude_defaults=True, exclude={"subagent"})
            if step.subagent:
                raw["subagent"] = self._script(step.subagent, knobs)
            played.append(raw)
        script = {"steps": played, "variation": knobs.model_dump()}
        return script | {"outcome": outcome} if outcome != "success" else script

    def _chain(self, knobs: Variation, outcome: str = "success") -> ConversationChain:
        target = self._outcome_step_script()
        steps = [
            step.model_copy(
                update={
                    "extra": step.extra
                    | {
                        "script": self._script(
                            _steps(step), knobs, outcome if _steps(step) == target else "success"
                        )
                    },
                    "allowed_tools": _with_exploration(step.allowed_tools),
                }
            )
            for step in self.manifest.chain or []
        ]
        return ConversationChain(name=self.name, steps=steps)

    # --- checking it ---------------------------------------------------------------------------

    def materialize(self, target: Path, *, solved: bool = False) -> Path:
        """A fresh copy of the workspace at `target`; `solved` lays the solution over it."""
        shutil.copytree(self.workspace_dir, target)
        if solved:
            if self.solution_dir is None:
                raise TemplateError("no solution/ folder to lay over the workspace", file=self.root)
            shutil.copytree(self.solution_dir, target, dirs_exist_ok=True)
        return target

    def run_verifier(self, workdir: Path) -> VerifierResult:
        return run_verifier(self.verifier, str(workdir))

    def check(self) -> list[str]:
        """What is wrong with the verifier: it must fail on the workspace, pass when solved."""
        found = []
        with tempfile.TemporaryDirectory(prefix=f"template-{self.name}-") as tmp:
            fresh = self.run_verifier(self.materialize(Path(tmp) / "fresh"))
            if fresh.passed:
                found.append("the verifier passes on the untouched workspace")
            if self.solution_dir is None:
                found.append("no solution/ folder: cannot show the verifier can pass")
            else:
                solved = self.run_verifier(self.materialize(Path(tmp) / "solved", solved=True))
                if not solved.passed:
                    found.append(f"the verifier fails on the solution: {solved.output[-800:]}")
        return found


def _with_exploration(tools: list[str]) -> list[str]:
    """`tools` plus Glob and Grep; an empty list stays empty (it means "the job's tools")."""
    return list(dict.fromkeys([*tools, *EXPLORATION_TOOLS])) if tools else []


def _steps(step: ChainStep) -> list[ScriptStep]:
    return [ScriptStep.model_validate(s) for s in step.extra.get("script") or []]


# --- loading -----------------------------------------------------------------------------------


def read_manifest(folder: Path) -> TemplateManifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise TemplateError("file is missing", file=path, field=MANIFEST)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TemplateError(f"not valid JSON: {exc}", file=path, field="(json)") from exc
    if not isinstance(data, dict):
        raise TemplateError("must be a JSON object", file=path, field="(root)")
    try:
        return TemplateManifest.model_validate(data)
    except ValidationError as exc:
        raise _combined(errors_from(exc, path)) from exc


def load_template(
    folder: Path, *, builtin: bool = False, in_category_folder: bool = True
) -> TaskTemplate:
    """Read and validate one template folder; raises `TemplateError` naming file and field.

    `in_category_folder`: the folder sits at <dir>/<category>/<name>/, so its name and its
    parent's must match the manifest (not so for a folder about to be added).
    """
    folder = folder.resolve()
    manifest = read_manifest(folder)
    found = problems(
        manifest,
        folder,
        folder / MANIFEST,
        category_folder=folder.parent.name if in_category_folder else None,
    )
    if found:
        raise _combined(found)
    return TaskTemplate(manifest, folder, builtin)


def _combined(errors: list[TemplateError]) -> TemplateError:
    first = errors[0]
    if len(errors) == 1:
        return first
    more = "; ".join(f"{e.field}: {e.problem}" for e in errors[1:])
    return TemplateError(f"{first.problem}; also {more}", file=first.file, field=first.field)


def scan(
    directory: Path, *, builtin: bool = False
) -> tuple[list[TaskTemplate], list[TemplateError]]:
    """Every template under <directory>/<category>/<name>/; bad ones become errors."""
    templates: list[TaskTemplate] = []
    errors: list[TemplateError] = []
    for category in _subfolders(directory):
        if (category / MANIFEST).is_file():
            errors.append(
                TemplateError(
                    f"a template must sit in a category folder: {directory}/<category>/<name>/",
                    file=category / MANIFEST,
                    field="category",
                )
            )
            continue
        for folder in _subfolders(category):
            try:
                templates.append(load_template(folder, builtin=builtin))
            except TemplateError as exc:
                errors.append(exc)
    return templates, errors


def stored_templates() -> tuple[list[TaskTemplate], list[TemplateError]]:
    """Every template uploaded to the shared store, from this machine's cache (fetched when
    missing); one that can't be fetched or loaded is an error, as a malformed folder is."""
    entries, errors = stored_entries()
    templates: list[TaskTemplate] = []
    for name, digest in entries:
        try:
            templates.append(stored_template(name, digest))
        except TemplateError as exc:
            errors.append(exc)
    return templates, errors


def stored_template(name: str, digest: str) -> TaskTemplate:
    """The stored template `name` with `digest`, loaded from this machine's cache."""
    found, errors = scan(fetch(name, digest))
    if errors:
        raise errors[0]
    if [t.name for t in found] != [name]:
        raise TemplateError(f"the stored template {stored_name(name, digest)} is not {name!r}")
    return replace(found[0], digest=digest)


def _subfolders(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and not p.is_symlink()
    )


def settings_dirs() -> list[Path]:
    return [Path(d) for d in getattr(settings, "TRAININGDASH_TEMPLATE_DIRS", [])]


class _default_or_instance:
    """A method callable on an instance, or on the class (then on the default library)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __get__(self, obj: Any, owner: type[TaskTemplateLibrary]) -> Callable[..., Any]:
        return types.MethodType(self.fn, obj if obj is not None else owner.load())


class TaskTemplateLibrary:
    def __init__(
        self, templates: Iterable[TaskTemplate] = (), errors: Iterable[TemplateError] = ()
    ) -> None:
        self._by_name: dict[str, TaskTemplate] = {}
        self.errors: list[TemplateError] = list(errors)
        for template in templates:
            if other := self._by_name.get(template.name):
                self.errors.append(
                    TemplateError(
                        f"{template.name!r} is already defined by {other.root / MANIFEST}",
                        file=template.root / MANIFEST,
                        field="name",
                    )
                )
            else:
                self._by_name[template.name] = template

    @classmethod
    def load(
        cls,
        extra_dirs: Iterable[Path | str] | None = None,
        *,
        include_builtin: bool = True,
        include_stored: bool | None = None,
    ) -> TaskTemplateLibrary:
        """The built-in templates, those in `extra_dirs` (default: the settings' dirs) and,
        unless `include_stored` says otherwise (default: when `extra_dirs` is the default),
        those uploaded to the shared store."""
        dirs = [(BUILTIN_DIR, True)] if include_builtin else []
        extra = settings_dirs() if extra_dirs is None else [Path(d) for d in extra_dirs]
        dirs += [(d, False) for d in extra]
        templates: list[TaskTemplate] = []
        errors: list[TemplateError] = []
        for directory, builtin in dirs:
            found, bad = scan(directory, builtin=builtin)
            templates += found
            errors += bad
        if extra_dirs is None if include_stored is None else include_stored:
            found, bad = stored_templates()
            templates += found
            errors += bad
        return cls(templates, errors)

    def __len__(self) -> int:
        return len(self._by_name)

    def __iter__(self) -> Iterator[TaskTemplate]:
        return iter(self._by_name.values())

    @_default_or_instance
    def templates(
        self, category: str | None = None, difficulty: str | None = None
    ) -> list[TaskTemplate]:
        """Templates, optionally of one category and/or difficulty, in a stable order."""
        return [
            t
            for t in self._by_name.values()
            if (category is None or t.category == category)
            and (difficulty is None or t.difficulty == difficulty)
        ]

    @_default_or_instance
    def get(self, name: str) -> TaskTemplate:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no task template named {name!r}") from None

    def _tasks(self, category: str) -> list[TaskDefinition]:
        return [t.task_definition() for t in self.templates(category=category)]

    @_default_or_instance
    def get_code_review_tasks(self) -> list[TaskDefinition]:
        return self._tasks("code_review")

    @_default_or_instance
    def get_debugging_tasks(self) -> list[TaskDefinition]:
        return self._tasks("debugging")

    @_default_or_instance
    def get_refactoring_tasks(self) -> list[TaskDefinition]:
        return self._tasks("refactoring")

    @_default_or_instance
    def get_implementation_tasks(self) -> list[TaskDefinition]:
        return self._tasks("implementation")

    @_default_or_instance
    def get_testing_tasks(self) -> list[TaskDefinition]:
        return self._tasks("testing")

    @_default_or_instance
    def get_multi_agent_tasks(self) -> list[TaskDefinition]:
        return self._tasks("multi_agent")


# --- adding a user template --------------------------------------------------------------------


def add_user_template(source_dir: Path, target_root: Path) -> TaskTemplate:
    """Validate a template folder and copy it to <target_root>/<category>/<name>/.

    Nothing is copied unless the folder is a valid template whose name is free (not built in,
    not already under `target_root`); the copy appears whole or not at all.
    """
    source_dir, target_root = Path(source_dir), Path(target_root)
    if not source_dir.is_dir():
        raise TemplateError("not a folder", file=source_dir, field=MANIFEST)
    template = load_template(source_dir, in_category_folder=False)
    _check_name_is_free(template, target_root)
    final = target_root / template.category / template.name
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{template.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        shutil.copytree(source_dir, staging, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        os.rename(staging, final)  # atomic: readers never see half a template
    except OSError as exc:
        raise TemplateError(f"could not copy the template: {exc}", file=final) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_template(final)


def _check_name_is_free(template: TaskTemplate, target_root: Path) -> None:
    taken = [BUILTIN_DIR / c / template.name for c in _names(BUILTIN_DIR)]
    taken += [target_root / c / template.name for c in _names(target_root)]
    for folder in taken:
        if folder.exists():
            raise TemplateError(
                f"a template named {template.name!r} already exists at {folder}",
                file=template.root / MANIFEST,
                field="name",
            )


def _names(directory: Path) -> list[str]:
    return [p.name for p in _subfolders(directory)]
