"""The seed document's complete training-data pipeline, offline, in one run.

    .venv/bin/python examples/training_data_generation.py      # from the repository's root

Sessions are real Claude Agent SDK sessions: the bundled Claude Code CLI runs real tools in a
sandbox, against the project's scripted model on loopback (the embedded default; batch jobs
go through an embedded Redis). Nothing leaves the machine. Everything is written under
./training_data/:

    training_data.db        the examples (SQLite; open it in the dashboard, see the README)
    training_data.duckdb/   the DuckDB analytics snapshot of the same examples
    exports/                one file per export format, the evaluation set, a HF dataset
    reports/                analytics.html and one CSV per breakdown

Run it again and it adds to what is there.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path
from typing import Any

from trainingdash.sdk import ClaudeCodeOptions, query
from trainingdash.sdk.conversation_chains import ChainStep, ConversationChain
from trainingdash.sdk.training_collector import (
    ConversationChainCollector,
    MultiAgentCollector,
    TrainingDataCollector,
)
from trainingdash.sdk.training_data import (
    AgentRole,
    Difficulty,
    DuckDBTrainingStorage,
    SQLiteTrainingStorage,
    TaskDefinition,
    TaskExecution,
    TrainingStorage,
)
from trainingdash.sdk.training_export import FORMATS, TrainingDataExporter
from trainingdash.sdk.training_generator import BatchTrainingGenerator, TaskTemplateLibrary

OUT = Path("training_data")
PYTHON = shlex.quote(sys.executable)  # the venv's interpreter by path (a shim may be slow)

# A tiny repository with a failing test, and what the scripted model does in it: read, fix,
# run the test, report. The verifier, not the agent's word, decides success.
CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\nassert add(2, 3) == 5, 'add is broken'\nprint('ok')\n"
FIX_SCRIPT: list[dict[str, Any]] = [
    {"thinking": "The test fails; read the module first."},
    {"tool": "Read", "input": {"file_path": "calc.py"}},
    {"tool": "Edit", "input": {"file_path": "calc.py", "old_string": "- b", "new_string": "+ b"}},
    {"tool": "Bash", "input": {"command": f"{PYTHON} test_calc.py"}},
    {"text": "Fixed add(): it subtracted instead of adding. test_calc.py passes."},
]
GIVE_UP_SCRIPT: list[dict[str, Any]] = [
    {"tool": "Read", "input": {"file_path": "calc.py"}},
    {"text": "add() looks right to me; I could not find the bug."},
]
FIX_TASK = TaskDefinition(
    name="Fix add()",
    description="calc.add subtracts; make test_calc.py pass",
    category="debugging",
    difficulty=Difficulty.EASY,
    required_tools=["Read", "Edit", "Bash"],
    expected_outcomes=["test_calc.py passes"],
)


def workspace(name: str) -> Path:
    root = OUT / "workspaces" / name
    root.mkdir(parents=True, exist_ok=True)
    (root / "calc.py").write_text(CALC)
    (root / "test_calc.py").write_text(TEST)
    return root.resolve()


async def basic_collection(storage: TrainingStorage) -> TaskDefinition:
    """The seed's quick start: one session, every message stored as it arrives."""
    collector = TrainingDataCollector(storage)
    task = TaskDefinition(
        name="Fix Type Error",
        description="Fix the TypeScript type error in utils.ts",
        category="debugging",
        difficulty=Difficulty.EASY,
        required_tools=["Read", "Edit"],
        expected_outcomes=["Type error resolved"],
    )
    async with collector.collect_from_query(
        task=task,
        prompt="Fix the type error in utils.ts line 42",
        query_func=query,
        options=ClaudeCodeOptions(allowed_tools=task.required_tools),
    ) as messages:
        async for _ in messages:
            pass  # stored as they arrive
    print(f"1. basic collection: {describe(collector)}")
    return task


def templates() -> None:
    """The template library: the seed's categories, each a sandboxed task with a verifier."""
    by_category = {
        "code_review": TaskTemplateLibrary.get_code_review_tasks(),
        "debugging": TaskTemplateLibrary.get_debugging_tasks(),
        "refactoring": TaskTemplateLibrary.get_refactoring_tasks(),
        "implementation": TaskTemplateLibrary.get_implementation_tasks(),
        "testing": TaskTemplateLibrary.get_testing_tasks(),
        "multi_agent": TaskTemplateLibrary.get_multi_agent_tasks(),
    }
    counts = ", ".join(f"{name} {len(tasks)}" for name, tasks in by_category.items())
    print(f"2. task templates: {counts}")


async def batch_generation(storage: TrainingStorage) -> None:
    """One session per category from the templates (chains and multi-agent included)."""
    stats = await BatchTrainingGenerator(storage).generate_diverse_dataset(
        examples_per_category=1,
        include_chains=True,
        include_multi_agent=True,
        seed=1,  # the same seed plans (and plays) the same sessions
        concurrency=2,
    )
    print(
        f"3. batch generation: {stats['total_examples']} examples, "
        f"{stats['golden_examples']} golden, {len(stats['failures'])} failed"
    )


def multi_agent(storage: TrainingStorage) -> None:
    """A multi-agent system outside the SDK, tracked action by action."""
    collector = MultiAgentCollector(storage)
    task = TaskDefinition(
        name="Add a /health endpoint",
        category="multi_agent",
        difficulty=Difficulty.MEDIUM,
        required_tools=["Write"],
    )
    collector.track_agent_action(
        agent_id="lead",
        agent_role=AgentRole.COORDINATOR,
        action_type="delegate",
        content={"to": "backend_dev", "task": "write the endpoint"},
        reasoning="The backend specialist owns the API",
    )
    collector.track_agent_action(
        agent_id="backend_dev",
        agent_role=AgentRole.SPECIALIST,
        action_type="tool_use",
        tool_name="Write",
        content={"file": "api.py", "action": "create"},
        reasoning="Creating API endpoints",
    )
    example = collector.create_multi_agent_example(
        task=task,
        coordinator_session_id="example-multi-agent",
        outcome="Feature implemented successfully",
        success=True,
        cost_usd=0.10,
    )
    print(f"4. multi-agent: example {example.pk}, quality {example.quality_score:.2f}")


async def chain(storage: TrainingStorage, task: TaskDefinition) -> None:
    """A debugging workflow as a chain of sessions, one example."""
    steps = [
        ChainStep(name="identify", prompt="Identify the root cause", allowed_tools=["Read"]),
        ChainStep(
            name="fix", prompt="Fix the issue", allowed_tools=["Edit"], depends_on=["identify"]
        ),
        ChainStep(
            name="verify", prompt="Verify the fix", allowed_tools=["Bash"], depends_on=["fix"]
        ),
    ]
    collector = ConversationChainCollector(storage)
    example = await collector.collect_from_chain(
        chain=ConversationChain(name="debug_chain", steps=steps),
        task=task,
        initial_prompt="Debug the failing test",
    )
    assert example is not None
    print(f"5. conversation chain: example {example.pk}, {len(steps)} steps")


def custom_scorer(execution: TaskExecution) -> float:
    """The seed's custom scorer: success, few actions, low cost."""
    score = 0.0
    if execution.success:
        score += 0.5
    if len(execution.actions) < 10:
        score += 0.3
    if execution.cost_usd < 0.05:
        score += 0.2
    return min(score, 1.0)


async def custom_scoring(storage: TrainingStorage) -> None:
    """Two attempts at a real fix in a sandbox, one that fixes it and one that gives up,
    verified by running the test and scored by our own scorer (a preference pair, too)."""
    collector = TrainingDataCollector(storage, quality_scorer=custom_scorer)
    for name, script in (("fix", FIX_SCRIPT), ("give-up", GIVE_UP_SCRIPT)):
        options = ClaudeCodeOptions(
            policy="script",
            script=script,
            cwd=workspace(name),
            allowed_tools=["Read", "Edit", "Bash"],
        )
        async with collector.collect_from_query(
            task=FIX_TASK,
            prompt="Fix the failing test in test_calc.py",
            query_func=query,
            options=options,
            verifier=f"{PYTHON} test_calc.py",
        ) as messages:
            async for _ in messages:
                pass
        print(f"6. custom scoring, {name}: {describe(collector)}")


def exports(storage: TrainingStorage) -> None:
    """Every export format, the evaluation set and a Hugging Face dataset."""
    exporter = TrainingDataExporter(storage)
    folder = OUT / "exports"
    for name, fmt in FORMATS.items():
        path = folder / f"{name}{Path(fmt.filename).suffix}"
        if name == "evaluation":
            result = exporter.export_for_evaluation(output_path=path, include_golden_only=True)
        else:
            result = exporter.export_for_fine_tuning(output_path=path, format=name)
        print(f"7. export {name}: {result.written} rows -> {path}")
    paths = exporter.export_for_ml_frameworks(
        output_dir=folder / "hf_dataset", framework="huggingface", split_ratio=(0.8, 0.1, 0.1)
    )
    print(f"7. export huggingface -> {folder / 'hf_dataset'} ({len(paths)} paths)")


def analytics(storage: DuckDBTrainingStorage) -> None:
    figures = storage.get_analytics()
    print(
        f"8. analytics: {figures['total_examples']} examples, "
        f"success rate {figures['success_rate']:.1%}, "
        f"average quality {figures['avg_quality']:.2f}"
    )
    exporter = TrainingDataExporter(storage)
    html = exporter.export_analytics(output_dir=OUT / "reports", format="html")
    csv = exporter.export_analytics(output_dir=OUT / "reports", format="csv")
    print(f"8. analytics report -> {html}, CSV files in {csv}")


def filtering(storage: TrainingStorage) -> None:
    golden = storage.get_training_examples(
        filters={"min_quality": 0.8, "category": "debugging", "is_golden": True}, limit=100
    )
    hard = storage.get_training_examples(filters={"difficulty": "hard"}, limit=50)
    scripted = storage.get_training_examples(filters={"source": "scripted", "tool": "Edit"})
    print(
        f"9. filters: {len(golden)} golden debugging, {len(hard)} hard, "
        f"{len(scripted)} scripted sessions that edited a file"
    )


def describe(collector: TrainingDataCollector) -> str:
    example = collector.last_example
    assert example is not None
    execution = example.execution
    return (
        f"example {example.pk} ({execution.source}), success {execution.success}, "
        f"quality {example.quality_score:.2f}, golden {example.is_golden}"
    )


def main() -> None:
    # Django's database calls are synchronous: sessions run in `asyncio.run`, the rest outside.
    OUT.mkdir(exist_ok=True)
    storage = SQLiteTrainingStorage(OUT / "training_data.db")  # the system of record
    task = asyncio.run(basic_collection(storage))
    templates()
    asyncio.run(batch_generation(storage))
    multi_agent(storage)
    asyncio.run(chain(storage, task))
    asyncio.run(custom_scoring(storage))
    exports(storage)
    # DuckDB beside it: analytics over the same examples.
    analytics(DuckDBTrainingStorage(OUT / "training_data.duckdb"))
    filtering(storage)


if __name__ == "__main__":
    main()
