"""The scripted model, driven by the real SDK and the real bundled Claude Code CLI.

Run without Django: ``pytest tests/test_scripted_model.py -p no:django``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from claude_agent_sdk import (
    AgentDefinition,
    AssistantMessage,
    ClaudeAgentOptions,
    Message,
    ResultError,
    ResultMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    query,
)

from collection.scripted_model import (
    POLICIES,
    ScriptedModelServer,
    ensure_server,
    parse_script,
    scripted_env,
)
from collection.scripted_model.policies import ScriptPolicy
from collection.scripted_model.request import ModelRequest, SessionConfig, encode_script
from collection.scripted_model.script import GIVE_UP_TEXTS, STUCK_TEXTS, plan, session_salt

# Runs in the SQLite pass only: no database at all.
pytestmark = pytest.mark.backend_independent

TOOLS = ["Read", "Edit", "Write", "Bash", "Grep", "Glob", "Agent"]
VERIFY = f"{sys.executable} -c \"from calc import add; assert add(2, 3) == 5; print('verified')\""
FIX_SCRIPT: list[dict[str, Any]] = [
    {
        "text": "Let me look at the code under test.",
        "tool": "Read",
        "input": {"file_path": "calc.py"},
    },
    {"thinking": "add() subtracts; the operator is wrong."},
    {
        "tool": "Edit",
        "input": {"file_path": "calc.py", "old_string": "a - b", "new_string": "a + b"},
    },
    {"tool": "Bash", "input": {"command": VERIFY, "description": "Run the verifier"}},
    {"text": "Fixed add(): it subtracted instead of adding. The verifier passes."},
]


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as running:
        yield running


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    return root


class Session:
    """Everything one query() produced, and the ResultError the SDK may raise after it."""

    def __init__(self, messages: list[Message], error: ResultError | None) -> None:
        self.messages = messages
        self.error = error

    @property
    def result(self) -> ResultMessage:
        return next(m for m in self.messages if isinstance(m, ResultMessage))

    def blocks(self, kind: type, *, main_thread: bool = True) -> list[Any]:
        return [
            b
            for m in self.messages
            if isinstance(m, AssistantMessage | UserMessage)
            and isinstance(m.content, list)
            and (not main_thread or m.parent_tool_use_id is None)
            for b in m.content
            if isinstance(b, kind)
        ]

    def tool_calls(self, cwd: Path) -> list[tuple[str, str]]:
        """(name, input) of main-thread tool calls, with the sandbox path made neutral."""
        return [
            (b.name, json.dumps(b.input, sort_keys=True).replace(str(cwd), "<cwd>"))
            for b in self.blocks(ToolUseBlock)
        ]


def run(prompt: str, cwd: Path, env: dict[str, str], **options: Any) -> Session:
    return anyio.run(_collect, prompt, cwd, env, options)


async def _collect(prompt: str, cwd: Path, env: dict[str, str], options: dict[str, Any]) -> Session:
    opts = ClaudeAgentOptions(cwd=str(cwd), env=env, allowed_tools=TOOLS, **options)
    messages: list[Message] = []
    try:
        async for message in query(prompt=prompt, options=opts):
            messages.append(message)
    except ResultError as error:  # the CLI exits non-zero after an error result
        return Session(messages, error)
    return Session(messages, None)


def env_for(
    server: ScriptedModelServer, tmp_path: Path, policy: str, **kwargs: Any
) -> dict[str, str]:
    config = tmp_path / f"claude-config-{policy}-{kwargs.get('seed', 0)}"
    return scripted_env(policy, base_url=server.base_url, config_dir=config, **kwargs)


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_script_session_reads_edits_and_runs_the_verifier(
    server: ScriptedModelServer, sandbox: Path, tmp_path: Path
) -> None:
    env = env_for(server, tmp_path, "script", script=FIX_SCRIPT, cwd=sandbox)
    session = run("Fix the failing test.", sandbox, env)

    assert (sandbox / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert [name for name, _ in session.tool_calls(sandbox)] == ["Read", "Edit", "Bash"]
    results = session.blocks(ToolResultBlock)
    assert not any(r.is_error for r in results)
    assert "verified" in str(results[-1].content)
    assert session.blocks(ThinkingBlock)[0].thinking == "add() subtracts; the operator is wrong."
    result = session.result
    assert result.subtype == "success" and not result.is_error
    assert result.num_turns == 4
    assert result.result == FIX_SCRIPT[-1]["text"]
    assert result.total_cost_usd and result.total_cost_usd > 0
    assert result.usage and result.usage["cache_creation_input_tokens"] > 0
    assert result.usage["cache_read_input_tokens"] > 0 and result.usage["output_tokens"] > 0


def test_same_seed_replays_the_same_tool_calls_and_another_seed_does_not(
    server: ScriptedModelServer, tmp_path: Path
) -> None:
    script = {"steps": FIX_SCRIPT, "variation": {"wander": 0.5, "tool_error": 0.5}}
    sandboxes = []
    for name in ("a", "b", "c"):
        root = tmp_path / name
        root.mkdir()
        (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
        sandboxes.append(root)

    async def play_all() -> list[Session]:
        sessions: list[Session] = [None, None, None]  # type: ignore[list-item]

        async def play(index: int, seed: int) -> None:
            env = env_for(
                server,
                tmp_path / sandboxes[index].name,
                "script",
                seed=seed,
                script=script,
                cwd=sandboxes[index],
            )
            sessions[index] = await _collect("Fix it.", sandboxes[index], env, {})

        async with anyio.create_task_group() as group:  # three CLIs at once: same server
            for index, seed in enumerate((2, 2, 3)):
                group.start_soon(play, index, seed)
        return sessions

    first, again, other = anyio.run(play_all)
    calls = first.tool_calls(sandboxes[0])
    assert calls == again.tool_calls(sandboxes[1])
    assert calls != other.tool_calls(sandboxes[2])
    assert len(calls) > 3  # the knobs added steps to Read, Edit, Bash
    assert any(r.is_error for r in other.blocks(ToolResultBlock))  # seed 3 makes mistakes...
    assert (sandboxes[2] / "calc.py").read_text().endswith("a + b\n")  # ...and recovers


def test_tool_error_policy_produces_a_failed_tool_result(
    server: ScriptedModelServer, sandbox: Path, tmp_path: Path
) -> None:
    # No cwd given: the server finds the working directory in the CLI's own prompt.
    session = run("Summarise the notes.", sandbox, env_for(server, tmp_path, "tool_error"))

    (call,) = session.blocks(ToolUseBlock)
    assert call.name == "Read" and call.input["file_path"].startswith(str(sandbox))
    (failure,) = session.blocks(ToolResultBlock)
    assert failure.tool_use_id == call.id and failure.is_error is True
    assert session.result.subtype == "success" and session.result.num_turns == 2


def test_max_turns_policy_runs_into_the_turn_limit(
    server: ScriptedModelServer, sandbox: Path, tmp_path: Path
) -> None:
    session = run("Keep checking.", sandbox, env_for(server, tmp_path, "max_turns"), max_turns=3)

    assert session.result.subtype == "error_max_turns" and session.result.is_error
    assert len(session.blocks(ToolUseBlock)) == 3
    # The CLI exits 1 after an error result; the SDK raises it as a ResultError.
    error = session.error
    assert isinstance(error, ResultError) and error.exit_code == 1
    assert (error.subtype, error.terminal_reason) == ("error_max_turns", "max_turns")
    assert error.errors == ["Reached maximum number of turns (3)"]


def test_subagent_policy_runs_a_defined_agent_whose_turns_name_their_parent(
    server: ScriptedModelServer, sandbox: Path, tmp_path: Path
) -> None:
    env = env_for(server, tmp_path, "subagent", params={"subagent_type": "lister", "command": "ls"})
    agents = {
        "lister": AgentDefinition(
            description="Lists files", prompt="You list files.", tools=["Bash", "Read"]
        )
    }
    session = run("Ask a helper what is here.", sandbox, env, agents=agents)

    (delegate,) = session.blocks(ToolUseBlock)
    assert delegate.name == "Agent" and delegate.input["subagent_type"] == "lister"
    sub_turns = [
        m
        for m in session.messages
        if isinstance(m, AssistantMessage) and m.parent_tool_use_id == delegate.id
    ]
    sub_calls = [b for m in sub_turns for b in m.content if isinstance(b, ToolUseBlock)]
    assert [(c.name, c.input["command"]) for c in sub_calls] == [("Bash", "ls")]
    sub_results = session.blocks(ToolResultBlock, main_thread=False)
    assert any("calc.py" in str(r.content) for r in sub_results)
    assert session.result.subtype == "success"


def test_model_error_policy_ends_the_session_with_an_api_error(
    server: ScriptedModelServer, sandbox: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    session = run(
        "Hello?",
        sandbox,
        env_for(
            server,
            tmp_path,
            "model_error",
            params={"status": 529, "error_type": "overloaded_error"},
        ),
    )

    assert time.monotonic() - started < 20  # CLAUDE_CODE_MAX_RETRIES=0: no backoff loop
    (reply,) = [m for m in session.messages if isinstance(m, AssistantMessage)]
    assert reply.error == "server_error" and reply.model == "<synthetic>"
    result = session.result
    assert result.is_error and result.api_error_status == 529
    assert result.terminal_reason == "api_error" and "API Error: 529" in (result.result or "")
    error = session.error
    assert isinstance(error, ResultError) and error.exit_code == 1
    # The agent loop itself completed: the subtype is "success", the reason says what failed.
    assert (error.subtype, error.terminal_reason) == ("success", "api_error")
    assert error.api_error_status == 529 and error.result == result.result


def test_non_streaming_reply_is_a_deterministic_function_of_the_request(
    server: ScriptedModelServer,
) -> None:
    body = {
        "model": "claude-test-1",
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "hello there"}],
    }
    url = f"{server.base_url}/v1/messages?beta=true"
    status, raw = post(url, body, {"x-api-key": "scripted:echo:7"})
    _, again = post(url, body, {"x-api-key": "scripted:echo:7"})

    reply = json.loads(raw)
    assert status == 200 and raw == again
    assert reply["type"] == "message" and reply["model"] == "claude-test-1"
    assert reply["content"] == [{"type": "text", "text": "Scripted reply to: hello there"}]
    assert reply["stop_reason"] == "end_turn"
    assert reply["usage"]["input_tokens"] > 0 and reply["usage"]["output_tokens"] > 0
    assert reply["usage"]["cache_creation_input_tokens"] > 0


def test_count_tokens_grows_with_the_request(server: ScriptedModelServer) -> None:
    url = f"{server.base_url}/v1/messages/count_tokens"
    short = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    long = {"model": "m", "messages": [{"role": "user", "content": "hi " * 400}]}
    status, raw = post(url, short, {})
    _, raw_long = post(url, long, {})

    assert status == 200
    assert 0 < json.loads(raw)["input_tokens"] < json.loads(raw_long)["input_tokens"]


def test_stream_sends_thinking_text_and_tool_input_as_anthropic_events(
    server: ScriptedModelServer,
) -> None:
    script = [
        {
            "thinking": "Look first.",
            "text": "Reading.",
            "tool": "Read",
            "input": {"file_path": "/tmp/x.py"},
        },
        {"text": "Done."},
    ]
    body = {
        "model": "m",
        "max_tokens": 1000,
        "stream": True,
        "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "go"}],
    }
    headers = {"X-Scripted-Policy": "script", "X-Scripted-Script": encode_script(script)}
    status, raw = post(f"{server.base_url}/v1/messages", body, headers)

    events = [
        json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")
    ]
    kinds = [e["type"] for e in events]
    assert status == 200 and kinds[0] == "message_start" and kinds[-1] == "message_stop"
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert {d["type"] for d in deltas} == {
        "thinking_delta",
        "signature_delta",
        "text_delta",
        "input_json_delta",
    }
    tool_json = "".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")
    assert json.loads(tool_json) == {"file_path": "/tmp/x.py"}
    (end,) = [e for e in events if e["type"] == "message_delta"]
    assert end["delta"]["stop_reason"] == "tool_use" and end["usage"]["output_tokens"] > 0


def test_bad_policy_is_a_client_error_and_unknown_paths_get_404(
    server: ScriptedModelServer,
) -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    status, raw = post(f"{server.base_url}/v1/messages", body, {"X-Scripted-Policy": "nope"})
    assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request_error"
    status, raw = post(f"{server.base_url}/v1/unknown", body, {})
    assert status == 404 and json.loads(raw)["type"] == "error"
    probe = urllib.request.Request(f"{server.base_url}/api/hello", method="HEAD")
    with urllib.request.urlopen(probe, timeout=5) as response:
        assert response.status == 200


def test_slow_policy_gives_up_as_soon_as_its_server_stops(monkeypatch) -> None:
    waiting = threading.Event()
    wait = ModelRequest.wait

    def wait_and_tell(request: ModelRequest, seconds: float) -> None:
        waiting.set()
        wait(request, seconds)

    monkeypatch.setattr(ModelRequest, "wait", wait_and_tell)
    slow = ScriptedModelServer().start()
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(
                post(
                    f"{slow.base_url}/v1/messages",
                    body,
                    {"X-Scripted-Policy": "slow", "X-Scripted-Params": '{"seconds": 60}'},
                )
            )
        except OSError as error:  # the connection closes without a reply
            outcome.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    assert waiting.wait(timeout=10), "the request never reached the slow policy"
    started = time.monotonic()
    slow.stop()
    caller.join(timeout=10)
    assert not caller.is_alive() and time.monotonic() - started < 5
    assert isinstance(outcome[0], OSError)


def test_variation_knobs_give_up_before_the_fix() -> None:
    script = parse_script({"steps": FIX_SCRIPT, "variation": {"give_up": 1.0}})
    for seed in range(5):
        steps = plan(script, str(seed))
        assert all(step.tool not in ("Edit", "Bash") for step in steps)
        assert steps[-1].text in GIVE_UP_TEXTS


TWO_EDITS = [
    {"tool": "Read", "input": {"file_path": "calc.py"}},
    {
        "tool": "Edit",
        "input": {"file_path": "calc.py", "old_string": "a - b", "new_string": "a + b"},
    },
    {
        "tool": "Edit",
        "input": {"file_path": "calc.py", "old_string": "i", "new_string": "i = n - 1\n"},
    },
    {"tool": "Bash", "input": {"command": VERIFY}},
    {"text": "Done."},
]


def played(outcome: str, seed: int = 0) -> list[tuple[str, str | None]]:
    steps = plan(parse_script({"steps": TWO_EDITS, "outcome": outcome}), str(seed))
    return [(step.kind, step.tool) for step in steps]


def test_each_outcome_is_played_as_tool_calls() -> None:
    script = parse_script({"steps": TWO_EDITS})
    assert script.supported_outcomes() == (
        "success",
        "wrong_fix",
        "partial",
        "give_up",
        "loop",
        "max_turns",
        "budget",
    )
    wrong = plan(parse_script({"steps": TWO_EDITS, "outcome": "wrong_fix"}), "0")
    assert wrong[2].kind == "wrong" and wrong[2].input["new_string"] == "i = n + 1\n"
    assert [tool for _, tool in played("partial")] == ["Read", "Edit", "Bash", None]
    loop = played("loop", seed=4)
    assert loop[0] == ("step", "Read") and set(loop[1:-1]) == {("error", "Edit")}
    assert 3 <= len(loop) - 2 <= 5
    stuck = plan(parse_script({"steps": TWO_EDITS, "outcome": "loop"}), "4")
    assert stuck[-1].text in STUCK_TEXTS
    assert played("max_turns") == [("step", "Read"), ("explore", "explore")]
    with pytest.raises(ValueError, match="unknown script outcome"):
        parse_script({"steps": TWO_EDITS, "outcome": "explode"})


def test_a_one_edit_script_has_no_partial_outcome() -> None:
    assert "partial" not in parse_script(FIX_SCRIPT).supported_outcomes()


def test_scripted_env_points_the_cli_at_the_process_server(tmp_path: Path) -> None:
    script_file = tmp_path / "script.json"
    script_file.write_text(json.dumps(FIX_SCRIPT))
    env = scripted_env("script", 5, script_file)

    assert env["ANTHROPIC_BASE_URL"] == ensure_server().base_url
    assert ensure_server() is ensure_server()
    assert env["ANTHROPIC_API_KEY"] == "scripted:script:5"
    assert f"X-Scripted-Script-File: {script_file}" in env["ANTHROPIC_CUSTOM_HEADERS"]
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert set(POLICIES) >= {
        "script",
        "echo",
        "tool_error",
        "max_turns",
        "subagent",
        "model_error",
        "slow",
    }
    with pytest.raises(ValueError, match="unknown scripted policy"):
        scripted_env("nope")


def test_module_runs_standalone_and_prints_its_url() -> None:
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "collection.scripted_model", "--port", "0"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "yo"}]}
        status, raw = post(f"{url}/v1/messages", body, {})
        assert status == 200 and json.loads(raw)["content"][0]["text"].endswith("yo")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_text_only_sessions_answer_with_the_echo_policy(
    server: ScriptedModelServer, sandbox: Path, tmp_path: Path
) -> None:
    session = run("Say hi", sandbox, env_for(server, tmp_path, "echo"))

    (reply,) = session.blocks(TextBlock)
    assert reply.text == "Scripted reply to: Say hi"
    assert session.result.subtype == "success" and session.result.num_turns == 1


def test_an_exploring_session_looks_around_before_its_work_and_keeps_its_steps():
    from collection.scripted_model.script import parse_script, plan

    steps = [
        {"tool": "Read", "input": {"file_path": "calc.py"}},
        {"tool": "Edit", "input": {"file_path": "calc.py", "old_string": "-", "new_string": "+"}},
        {"text": "Fixed."},
    ]
    explorer = parse_script({"steps": steps, "variation": {"explore": 1.0}})
    plain = parse_script({"steps": steps})
    for seed in ("1", "2", "3"):
        played = plan(explorer, seed)
        looks = [s for s in played if s.kind == "wander"]
        assert 3 <= len(looks) <= 10
        # The looks come before the work (the Edit); the real steps are all still played.
        edit_at = next(i for i, s in enumerate(played) if s.tool == "Edit")
        assert all(played.index(s) < edit_at for s in looks)
        assert [s.tool for s in played if s.kind == "step"] == ["Read", "Edit", None]
        assert [s.tool for s in plan(plain, seed)] == ["Read", "Edit", None]


def turns_played(script: dict[str, Any], seed: int, cwd: Path) -> int:
    """How many turns the script policy plays for this session before its final answer."""
    policy = ScriptPolicy(SessionConfig(policy="script", seed=seed, script=script, cwd=str(cwd)))
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Fix it."}]
    for turn in range(1, 40):
        reply = policy.next_turn(ModelRequest(body={"messages": messages}, config=policy.config))
        if reply.stop_reason == "end_turn":
            return turn
        messages += [
            {"role": "assistant", "content": list(reply.blocks)},
            {"role": "user", "content": [{"type": "tool_result", "content": "ok"}]},
        ]
    raise AssertionError("the script never ended")


def test_sessions_of_different_scripts_sharing_a_seed_draw_their_variation_apart(tmp_path):
    """A batch gives every template the same few seeds. Drawn from the seed alone, every
    session of a seed explored or none did: a 60-session batch had 37 verified successes, all
    of them long, and not one golden example."""
    fix, two_edits = {"steps": FIX_SCRIPT}, {"steps": TWO_EDITS}
    straight = {id(s): turns_played(s, 0, tmp_path) for s in (fix, two_edits)}

    def explores(script: dict[str, Any], seed: int) -> bool:
        varied = script | {"variation": {"explore": 0.5}}
        return turns_played(varied, seed, tmp_path) > straight[id(script)]

    both = [(explores(fix, seed), explores(two_edits, seed)) for seed in range(40)]
    assert 10 <= sum(a for a, _ in both) <= 30  # the knob works: about half explore
    apart = sum(a != b for a, b in both)
    assert 8 <= apart <= 32, both  # independent draws: about 20 of 40 differ
    # One session still replays exactly, on any machine (commands hold this one's paths).
    moved = json.loads(json.dumps(fix).replace(sys.executable, "/opt/other/bin/python3"))
    assert moved != fix and session_salt(7, moved) == session_salt(7, fix)
    again = json.loads(json.dumps(fix | {"variation": {"explore": 0.5}}))
    assert turns_played(again, 7, tmp_path) == turns_played(
        fix | {"variation": {"explore": 0.5}}, 7, tmp_path
    )
