"""The one conversion from a stored trajectory to format-neutral records.

    for record in load_records(filter_examples(filters), ExportOptions()):
        print(record.id, record.prompt, len(record.steps))

A `Record` is one conversation: the coordinator's, or (with `subagents="separate"`) one
sub-agent's, linked to the record that spawned it by `parent_id` / `spawned_by`. A `Step` is
one assistant response: the stored assistant messages sharing a response id (the live
collector stores each content block as its own message) merged, with its tool calls and their
outputs (read from `ToolCall` rows, which pair each call with its result), and whether a
reviewer marked it bad.

What is read, and why it is constant in memory and queries: examples in primary-key order, in
chunks of `CHUNK` rows; per chunk five queries (examples with their executions; their tasks; the
messages worth reading, not bookkeeping lines nor the tool results their calls carry; the tool
calls; the step marks), however long the trajectories.

Rules:
- the prompt is the user text before the first step (a live session's prompt, which the
  collector keeps in the execution's metadata, when no stored message says it); user text
  later in the session goes with the step after it (`Step.user_text`);
- thinking is kept only with `include_thinking`; redacted thinking never;
- tool outputs are kept whole, never cut;
- `tools` lists the tools the record used: Claude Code's known schemas (`KNOWN_TOOLS`),
  widened with any argument seen that the schema lacks; other tools get a schema inferred
  from their observed arguments.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from django.db.models import QuerySet

from collection.models import Message, StepMark, Task, ToolCall, TrainingExample
from collection.rawsql import json_value, raw_rows
from exports.options import ExportOptions

CHUNK = 500
# Message types that are bookkeeping (hooks, file snapshots, the input queue): never exported.
AUX_TYPES = ("progress", "file-history-snapshot", "queue-operation", "summary")
USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
SPAWNING_TOOLS = ("Task", "Agent")


@dataclass
class ToolCallRecord:
    id: str
    name: str
    arguments: dict[str, Any]
    output: str
    is_error: bool
    # False when the trajectory ends before the tool answered (a killed session).
    answered: bool = True


@dataclass
class Step:
    """One assistant response."""

    message_ids: list[int]
    text: str
    thinking: str
    tool_calls: list[ToolCallRecord]
    bad: bool
    comment: str
    model: str
    usage: dict[str, int]
    # What the user said between the previous step and this one (after the first prompt).
    user_text: str = ""


@dataclass
class TaskInfo:
    name: str
    description: str
    category: str
    difficulty: str
    required_tools: list[str]
    expected_outcomes: list[str]
    constraints: list[str]
    template: str
    verifier: str


@dataclass
class Record:
    id: str
    example_id: int
    execution_id: int
    parent_id: str | None
    spawned_by: str | None
    task: TaskInfo
    system: str
    prompt: str
    steps: list[Step]
    final_text: str
    tools: list[dict[str, Any]]
    success: bool | None
    quality: float
    golden: bool
    validated: bool
    tags: list[str]
    model: str
    source: str
    cost_usd: float
    # The session's token totals as its result stated them (a coordinator's include its
    # sub-agents', as its cost does); a sub-agent's, summed over its steps.
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    num_turns: int
    duration_ms: int | None
    created_at: str
    subagents: list[Record] = field(default_factory=list)


# --- loading -------------------------------------------------------------------------------


def load_records(
    examples: QuerySet[TrainingExample], options: ExportOptions, *, nest_subagents: bool = False
) -> Iterator[Record]:
    """The examples' records, in primary-key order, a chunk at a time.

    With `subagents="separate"` each sub-agent record follows the record that spawned it
    (depth first), or, with `nest_subagents`, sits in its spawner's `subagents` instead (for
    formats that embed them); with "coordinator_only" sub-agents are left out.
    """
    for chunk in _chunks(selected(examples, options)):
        yield from _chunk_records(chunk, options, nest_subagents)


def selected(
    examples: QuerySet[TrainingExample], options: ExportOptions
) -> QuerySet[TrainingExample]:
    """The examples an export with `options` reads (duplicates and non-golden left out when
    asked), in primary-key order."""
    if options.exclude_duplicates:
        examples = examples.filter(duplicate_of__isnull=True)
    if options.golden_only:
        examples = examples.filter(is_golden=True)
    return examples.order_by("pk")


@dataclass
class _Example:
    """What records use of an example, its execution and its task (read as plain values: model
    instances cost more to build than the rest of a record)."""

    pk: int
    execution_id: int
    quality_score: float
    is_golden: bool
    validated: bool
    tags: Any
    created_at: str
    metadata: dict[str, Any]  # the execution's
    success: bool | None
    model: str
    source: str
    cost_usd: float
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    num_turns: int
    duration_ms: int | None
    task: TaskInfo


_EXAMPLE_FIELDS = (
    *("pk", "execution_id", "quality_score", "is_golden", "validated", "tags", "created_at"),
    *("execution__metadata", "execution__success", "execution__model", "execution__source"),
    *("execution__cost_usd", "execution__input_tokens", "execution__output_tokens"),
    *("execution__cache_creation_input_tokens", "execution__cache_read_input_tokens"),
    *("execution__num_turns", "execution__duration_ms", "execution__task_id"),
)
_TASK_FIELDS = (
    *("pk", "name", "description", "category", "difficulty", "required_tools"),
    *("expected_outcomes", "constraints", "source_template", "metadata"),
)


def _chunks(examples: QuerySet[TrainingExample]) -> Iterator[list[_Example]]:
    # Keyset over the pk: each chunk is one bounded query, whatever the table's size.
    rows = examples.values_list(*_EXAMPLE_FIELDS)
    last = 0
    while True:
        chunk = list(rows.filter(pk__gt=last)[:CHUNK])
        if not chunk:
            return
        tasks = _tasks({row[-1] for row in chunk})
        yield [_example(row, tasks) for row in chunk]
        last = chunk[-1][0]


def _example(row: tuple[Any, ...], tasks: dict[int, TaskInfo]) -> _Example:
    pk, execution_id, quality, golden, validated, tags, created_at, metadata, *rest = row
    success, model, source, cost, tokens_in, tokens_out, *rest = rest
    cache_writes, cache_reads, turns, duration, task_id = rest
    return _Example(
        pk=pk,
        execution_id=execution_id,
        quality_score=quality,
        is_golden=golden,
        validated=validated,
        tags=tags,
        created_at=created_at.isoformat(),
        metadata=_dict(metadata),
        success=success,
        model=model,
        source=source,
        cost_usd=cost,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cache_creation_input_tokens=cache_writes,
        cache_read_input_tokens=cache_reads,
        num_turns=turns,
        duration_ms=duration,
        task=tasks[task_id],
    )


def _tasks(task_ids: set[int]) -> dict[int, TaskInfo]:
    found: dict[int, TaskInfo] = {}
    for pk, *fields, template, metadata in Task.objects.filter(pk__in=task_ids).values_list(
        *_TASK_FIELDS
    ):
        metadata = _dict(metadata)
        name, description, category, difficulty, required, expected, constraints = fields
        found[pk] = TaskInfo(
            name=name,
            description=description,
            category=category,
            difficulty=difficulty,
            required_tools=_strings(required),
            expected_outcomes=_strings(expected),
            constraints=_strings(constraints),
            template=template or str(metadata.get("template") or ""),
            verifier=str(metadata.get("verifier") or ""),
        )
    return found


@dataclass
class _Row:
    pk: int
    type: str
    subtype: str
    parent: str
    payload: dict[str, Any]


def _chunk_records(chunk: list[_Example], options: ExportOptions, nest: bool) -> Iterator[Record]:
    ids = [example.execution_id for example in chunk]
    rows = _rows(ids)
    calls = _calls(ids)
    marks = _marks([example.pk for example in chunk])
    for example in chunk:
        builder = _Builder(example, rows[example.execution_id], calls, marks, options)
        yield from builder.records(nest)


def message_rows(execution_ids: list[int]) -> QuerySet[Message, tuple[Any, ...]]:
    """The messages worth reading of these executions: not bookkeeping lines, nor the tool
    results their calls carry (read from the calls), in order."""
    answered = ToolCall.objects.filter(execution_id__in=execution_ids, answered_in__isnull=False)
    return (
        Message.objects.filter(execution_id__in=execution_ids)
        .exclude(type__in=AUX_TYPES)
        .exclude(pk__in=answered.values("answered_in"))
        .order_by("execution_id", "seq")
        .values_list("pk", "execution_id", "type", "subtype", "parent_tool_use_id", "payload")
    )


def call_rows(execution_ids: list[int]) -> QuerySet[ToolCall, tuple[Any, ...]]:
    """The tool calls of these executions, with their results."""
    return ToolCall.objects.filter(execution_id__in=execution_ids).values_list(
        "execution_id", "tool_use_id", "answered_in_id", "result", "is_error", "input"
    )


def _rows(execution_ids: list[int]) -> dict[int, list[_Row]]:
    found: dict[int, list[_Row]] = defaultdict(list)
    for pk, execution_id, kind, subtype, parent, payload in raw_rows(message_rows(execution_ids)):
        found[execution_id].append(_Row(pk, kind, subtype, parent, _dict(json_value(payload))))
    return found


@dataclass
class _Call:
    """What records use of a `ToolCall` row; its input (rarely needed) parsed on demand."""

    answered: bool
    result: Any
    is_error: bool
    input_text: Any

    @property
    def input(self) -> Any:
        return json_value(self.input_text)


def _calls(execution_ids: list[int]) -> dict[tuple[int, str], _Call]:
    found: dict[tuple[int, str], _Call] = {}
    rows = raw_rows(call_rows(execution_ids))
    for execution_id, tool_use_id, answered_in, result, is_error, arguments in rows:
        value = json_value(result)
        answered = answered_in is not None or value is not None
        found[(execution_id, tool_use_id)] = _Call(answered, value, bool(is_error), arguments)
    return found


def _marks(example_ids: list[int]) -> dict[int, dict[int, str]]:
    """example pk -> {marked message pk: the reviewer's comment}."""
    found: dict[int, dict[int, str]] = defaultdict(dict)
    marks = StepMark.objects.filter(example_id__in=example_ids).values_list(
        "example_id", "message_id", "comment"
    )
    for example_id, message_id, comment in marks:
        found[example_id][message_id] = comment
    return found


# --- building ------------------------------------------------------------------------------


@dataclass
class _Thread:
    """One agent's conversation as read from its rows."""

    prompt: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    pending_user: list[str] = field(default_factory=list)
    response_ids: list[str] = field(default_factory=list)
    system: str = ""
    result: str = ""


class _Builder:
    def __init__(
        self,
        example: _Example,
        rows: list[_Row],
        calls: dict[tuple[int, str], _Call],
        marks: dict[int, dict[int, str]],
        options: ExportOptions,
    ) -> None:
        self.example = example
        self.calls, self.marks = calls, marks.get(example.pk, {})
        self.options = options
        self.threads: dict[str, _Thread] = defaultdict(_Thread)
        for row in rows:
            self._read(self.threads[row.parent], row)

    def records(self, nest: bool) -> Iterator[Record]:
        main = self._record("", None)
        if self.options.subagents == "coordinator_only":
            yield main
            return
        spawned = self._spawned(main)
        if nest:
            yield main
            return
        yield from _depth_first(main, spawned)

    def _spawned(self, main: Record) -> dict[str, list[Record]]:
        """record id -> the sub-agent records it spawned (orphan threads go to the main one)."""
        by_spawner: dict[str, list[Record]] = defaultdict(list)
        records = {"": main}
        for parent in self.threads:
            if parent:
                records[parent] = self._record(parent, main.id)
        owner = {c.id: r for r in records.values() for s in r.steps for c in s.tool_calls}
        for parent, record in records.items():
            if not parent:
                continue
            spawner = owner.get(parent, main)
            if spawner is record:  # a thread whose id is one of its own calls: keep it apart
                spawner = main
            record.parent_id = spawner.id
            by_spawner[spawner.id].append(record)
            spawner.subagents.append(record)
        return by_spawner

    # --- reading rows --------------------------------------------------------------------

    def _read(self, thread: _Thread, row: _Row) -> None:
        payload = row.payload
        if payload.get("isMeta"):
            return
        if row.type == "assistant":
            self._assistant(thread, row)
        elif row.type == "user":
            self._user(thread, payload)
        elif row.type == "system" and row.subtype == "system_prompt":
            thread.system = str(payload.get("content") or "")
        elif row.type == "result":
            thread.result = str(payload.get("result") or "")

    def _user(self, thread: _Thread, payload: dict[str, Any]) -> None:
        content = _dict(payload.get("message")).get("content")
        text = "\n\n".join(_texts(content)).strip()
        if not text:
            return
        (thread.pending_user if thread.steps else thread.prompt).append(text)

    def _assistant(self, thread: _Thread, row: _Row) -> None:
        body = _dict(row.payload.get("message"))
        response_id = str(body.get("id") or f"message-{row.pk}")
        blocks = body.get("content")
        if isinstance(blocks, str):
            blocks = [{"type": "text", "text": blocks}]
        blocks = [_dict(b) for b in blocks] if isinstance(blocks, list) else []
        step = self._step_for(thread, response_id, row, body)
        for block in blocks:
            self._block(step, block)
        if row.pk in self.marks:
            step.bad = True
            step.comment = "\n".join(c for c in (step.comment, self.marks[row.pk]) if c)

    def _step_for(self, thread: _Thread, response_id: str, row: _Row, body: dict[str, Any]) -> Step:
        """The open step when this message continues its response, else a new one."""
        usage = {k: v for k, v in _dict(body.get("usage")).items() if k in USAGE_KEYS}
        usage = {k: v for k, v in usage.items() if isinstance(v, int)}
        if thread.steps and thread.response_ids[-1] == response_id and not thread.pending_user:
            step = thread.steps[-1]
            step.message_ids.append(row.pk)
            step.usage = usage or step.usage  # the CLI repeats the usage so far on each part
            return step
        user_text = "\n\n".join(thread.pending_user)
        thread.pending_user = []
        step = Step([row.pk], "", "", [], False, "", str(body.get("model") or ""), usage)
        step.user_text = user_text
        thread.steps.append(step)
        thread.response_ids.append(response_id)
        return step

    def _block(self, step: Step, block: dict[str, Any]) -> None:
        kind = block.get("type")
        if kind == "text":
            step.text = _join(step.text, str(block.get("text") or "").strip())
        elif kind == "thinking" and self.options.include_thinking:
            step.thinking = _join(step.thinking, str(block.get("thinking") or "").strip())
        elif kind == "tool_use":
            step.tool_calls.append(self._tool_call(block))

    def _tool_call(self, block: dict[str, Any]) -> ToolCallRecord:
        tool_use_id = str(block.get("id") or "")
        arguments = _dict(block.get("input"))
        call = self.calls.get((self.example.execution_id, tool_use_id))
        answered = call is not None and call.answered
        output = _result_text(call.result) if call is not None else ""
        is_error = call.is_error if call is not None else False
        name = str(block.get("name") or "")
        return ToolCallRecord(tool_use_id, name, arguments, output, is_error, answered)

    # --- records -------------------------------------------------------------------------

    def _record(self, parent: str, coordinator: str | None) -> Record:
        # (see _without_unanswered_tail for the one edit made to what the agent did)
        thread = self.threads.get(parent) or _Thread()
        example = self.example
        record_id = f"ex-{example.pk}" + (f".agent-{parent}" if parent else "")
        steps = _without_unanswered_tail(thread.steps)
        record = Record(
            id=record_id,
            example_id=example.pk,
            execution_id=example.execution_id,
            parent_id=coordinator,
            spawned_by=parent or None,
            task=example.task,
            system=thread.system or str(_dict(example.metadata).get("system_prompt") or ""),
            prompt="\n\n".join(thread.prompt) or self._fallback_prompt(parent),
            steps=steps,
            final_text=self._final_text(thread, parent),
            tools=tool_schemas(steps),
            success=example.success if not parent else None,
            quality=example.quality_score,
            golden=example.is_golden,
            validated=example.validated,
            tags=[str(tag) for tag in example.tags] if isinstance(example.tags, list) else [],
            model=(example.model if not parent else "") or _first_model(steps),
            source=example.source,
            cost_usd=example.cost_usd if not parent else 0.0,
            input_tokens=example.input_tokens if not parent else _used(steps, "input_tokens"),
            output_tokens=example.output_tokens if not parent else _used(steps, "output_tokens"),
            cache_creation_input_tokens=(
                example.cache_creation_input_tokens
                if not parent
                else _used(steps, "cache_creation_input_tokens")
            ),
            cache_read_input_tokens=(
                example.cache_read_input_tokens
                if not parent
                else _used(steps, "cache_read_input_tokens")
            ),
            num_turns=example.num_turns if not parent else len(steps),
            duration_ms=example.duration_ms if not parent else None,
            created_at=example.created_at,
        )
        return record

    def _final_text(self, thread: _Thread, parent: str) -> str:
        """The session's answer: its result message's text, else its last assistant text; a
        sub-agent without one answered through its spawning call's output (its report)."""
        if not parent:
            return thread.result or _last_text(thread.steps)
        call = self.calls.get((self.example.execution_id, parent))
        report = _result_text(call.result) if call is not None else ""
        return _last_text(thread.steps) or report

    def _fallback_prompt(self, parent: str) -> str:
        """A live session's prompt (kept in metadata); a sub-agent's, its spawning call's."""
        if not parent:
            return str(_dict(self.example.metadata).get("prompt") or "")
        call = self.calls.get((self.example.execution_id, parent))
        return str(_dict(call.input).get("prompt") or "") if call is not None else ""


def _depth_first(record: Record, spawned: dict[str, list[Record]]) -> Iterator[Record]:
    children = spawned.get(record.id, [])
    record.subagents = []  # yielded on their own: not nested as well
    yield record
    for child in children:
        yield from _depth_first(child, spawned)


# --- tool schemas ----------------------------------------------------------------------------


def _obj(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


_STR = {"type": "string"}
_NUM = {"type": "number"}
_BOOL = {"type": "boolean"}
_EDIT = _obj(["old_string", "new_string"], old_string=_STR, new_string=_STR, replace_all=_BOOL)
_TODO = _obj(
    ["content", "status"],
    content=_STR,
    status={"type": "string", "enum": ["pending", "in_progress", "completed"]},
    activeForm=_STR,
)
_SPAWN = _obj(["description", "prompt"], description=_STR, prompt=_STR, subagent_type=_STR)

# Claude Code's built-in tools (transcripts hold calls, not schemas): name -> (description,
# parameters), as the CLI declares their arguments.
KNOWN_TOOLS: dict[str, tuple[str, dict[str, Any]]] = {
    "Bash": (
        "Run a shell command in the workspace.",
        _obj(["command"], command=_STR, description=_STR, timeout=_NUM, run_in_background=_BOOL),
    ),
    "BashOutput": ("Read output of a background shell.", _obj(["bash_id"], bash_id=_STR)),
    "KillShell": ("Stop a background shell.", _obj(["shell_id"], shell_id=_STR)),
    "Read": (
        "Read a file, optionally a range of lines.",
        _obj(["file_path"], file_path=_STR, offset=_NUM, limit=_NUM),
    ),
    "Write": ("Write a file.", _obj(["file_path", "content"], file_path=_STR, content=_STR)),
    "Edit": (
        "Replace text in a file.",
        _obj(
            ["file_path", "old_string", "new_string"],
            file_path=_STR,
            old_string=_STR,
            new_string=_STR,
            replace_all=_BOOL,
        ),
    ),
    "MultiEdit": (
        "Make several replacements in one file.",
        _obj(["file_path", "edits"], file_path=_STR, edits={"type": "array", "items": _EDIT}),
    ),
    "Glob": ("Find files by glob pattern.", _obj(["pattern"], pattern=_STR, path=_STR)),
    "Grep": (
        "Search file contents with a regular expression.",
        _obj(
            ["pattern"],
            pattern=_STR,
            path=_STR,
            glob=_STR,
            type=_STR,
            output_mode={"type": "string", "enum": ["content", "files_with_matches", "count"]},
            **{"-i": _BOOL, "-n": _BOOL, "-A": _NUM, "-B": _NUM, "-C": _NUM},
            multiline=_BOOL,
            head_limit=_NUM,
        ),
    ),
    "LS": ("List a directory.", _obj(["path"], path=_STR, ignore={"type": "array"})),
    "WebFetch": ("Fetch a URL and read it.", _obj(["url", "prompt"], url=_STR, prompt=_STR)),
    "WebSearch": (
        "Search the web.",
        _obj(
            ["query"],
            query=_STR,
            allowed_domains={"type": "array", "items": _STR},
            blocked_domains={"type": "array", "items": _STR},
        ),
    ),
    "TodoWrite": (
        "Write the task list.",
        _obj(["todos"], todos={"type": "array", "items": _TODO}),
    ),
    "NotebookEdit": (
        "Edit a Jupyter notebook cell.",
        _obj(
            ["notebook_path", "new_source"],
            notebook_path=_STR,
            new_source=_STR,
            cell_id=_STR,
            cell_type={"type": "string", "enum": ["code", "markdown"]},
            edit_mode={"type": "string", "enum": ["replace", "insert", "delete"]},
        ),
    ),
    "Task": ("Start a sub-agent on a task.", _SPAWN),
    "Agent": ("Start a sub-agent on a task.", _SPAWN),
    "ExitPlanMode": ("Present the plan and leave plan mode.", _obj(["plan"], plan=_STR)),
}
_JSON_TYPES = ((bool, "boolean"), (int, "number"), (float, "number"), (str, "string"))


def tool_schemas(steps: list[Step]) -> list[dict[str, Any]]:
    """JSON-schema definitions {name, description, parameters} of the tools the steps call,
    by name."""
    seen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in (call for step in steps for call in step.tool_calls):
        seen[call.name].append(call.arguments)
    return [_schema(name, seen[name]) for name in sorted(seen)]


def _schema(name: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    description, known = KNOWN_TOOLS.get(name, ("", None))
    properties = dict(known["properties"]) if known else {}
    for arguments in calls:  # widen with what was seen (a newer CLI's extra arguments)
        for key, value in arguments.items():
            if key not in properties:
                properties[key] = _type_of(value)
    if known:
        required = list(known["required"])
    else:
        required = sorted(set.intersection(*(set(a) for a in calls))) if calls else []
        description = f"The {name} tool (schema inferred from its observed calls)."
    parameters = {"type": "object", "properties": properties, "required": required}
    return {"name": name, "description": description, "parameters": parameters}


def _type_of(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return {"type": "array"}
    if isinstance(value, dict):
        return {"type": "object"}
    for python, json_type in _JSON_TYPES:
        if isinstance(value, python):
            return {"type": json_type}
    return {}


# --- small readers ---------------------------------------------------------------------------


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    blocks = [_dict(b) for b in content]
    return [str(b.get("text") or "") for b in blocks if b.get("type") == "text"]


def _result_text(result: Any) -> str:
    """A tool result as text, whole: a string as is, content blocks joined, else JSON."""
    if result is None:
        return ""
    if isinstance(result, str):
        return result
    if isinstance(result, list):
        return "\n".join(_block_text(block) for block in result)
    return json.dumps(result, ensure_ascii=False, sort_keys=True)


def _block_text(block: Any) -> str:
    if isinstance(block, dict):
        if block.get("type") == "text":
            return str(block.get("text", ""))
        if block.get("type") == "image":
            return "[image]"
    return json.dumps(block, ensure_ascii=False, sort_keys=True)


def _last_text(steps: list[Step]) -> str:
    return next((step.text for step in reversed(steps) if step.text), "")


def _first_model(steps: list[Step]) -> str:
    return next((step.model for step in steps if step.model), "")


def _used(steps: list[Step], key: str) -> int:
    return sum(step.usage.get(key, 0) for step in steps)


def _join(before: str, more: str) -> str:
    return f"{before}\n\n{more}" if before and more else before or more


def _strings(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _without_unanswered_tail(steps: list[Step]) -> list[Step]:
    """A session stopped by its turn or budget limit ends on tool calls that never ran: those
    calls are dropped (and the step too, if it said nothing else), so that the trajectory stays
    a valid conversation for every format. An unanswered call anywhere else is kept, and the
    validators leave that record out."""
    if not steps or all(call.answered for call in steps[-1].tool_calls):
        return steps
    last = steps[-1]
    calls = [call for call in last.tool_calls if call.answered]
    if not calls and not last.text.strip():
        return steps[:-1]
    return [*steps[:-1], replace(last, tool_calls=calls)]
