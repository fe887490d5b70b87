"""The seed document, run: each of its Python blocks (read from the document now, imports
pointed at `trainingdash.sdk`) and the complete example script, offline, from a plain script.

Each run is a fresh process in a fresh folder (a script's storage configures Django once per
process), on the embedded default: the bundled CLI against the scripted model, embedded Redis.
What they produced is read back from the SQLite file and the files written.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from trainingdash.sdk import SEED_MODULES, translate_imports

# Scripts on their own SQLite files: the same whatever database the suite runs on.
pytestmark = pytest.mark.backend_independent

ROOT = Path(__file__).resolve().parent.parent
# The seed document the user gave us, as given (its API names and examples are a promise).
SEED_DOC = ROOT / "tests" / "fixtures" / "seed" / "training-data-generation.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)

# What a reader adds to run the blocks in order (keyed by a marker in the block they follow):
# the multi-agent and chain blocks use a `task` the document leaves to the reader (the quick
# start's is local to its function), and the batch block only defines `generate_dataset`.
FOLLOW_UPS = {
    "get_debugging_tasks": "task = debug_tasks[0]",
    "async def generate_dataset": "await generate_dataset()",
    # The batch's outcomes are random (the block gives no seed), and a busy machine's slower
    # sessions may leave none golden: a reviewer marks the quick start's example golden (not a
    # batch's, whose golden count the batch block reports), so the evaluation block (golden
    # only) always has something to write. (Its own block: the one above awaits.)
    "generate_diverse_dataset": textwrap.dedent(
        """
        from collection.models import TrainingExample as _Example
        _best = storage.get_training_examples(filters={"q": "Fix Type Error"}, limit=1)
        _Example.objects.filter(pk__in=[e.pk for e in _best]).update(is_golden=True)
        """
    ),
    # The custom scorer, used: one session scored by it.
    "quality_scorer=custom_scorer": textwrap.dedent(
        """
        async def _scored():
            async with collector.collect_from_query(
                task=task, prompt="What is 2 + 2?", options=ClaudeCodeOptions()
            ) as messages:
                async for _ in messages:
                    pass
            return collector.last_example
        _custom = await _scored()
        _report["custom"] = {"pk": _custom.pk, "score": _custom.quality_score}
        """
    ),
    'format="csv"': '_report["at_analytics"] = len(storage.get_training_examples())',
    "include_golden_only=True": '_report["golden"] = len(storage.get_training_examples('
    'filters={"is_golden": True}))',
    'filters={"difficulty": "hard"}': textwrap.dedent(
        """
        _report["hard"] = len(examples)
        _report["others"] = len(storage.get_training_examples(filters={
            "source": "scripted", "status": "completed", "tool": "Read", "max_cost": 1.0,
            "min_turns": 2,
        }, limit=100))
        """
    ),
}

RUNNER = """
import ast, asyncio, json, sys

blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__", "_report": {}}
for code in blocks:
    compiled = compile(code, "<seed>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)
    if asyncio.iscoroutine(result):  # a block with a top-level await, as in a notebook
        asyncio.run(result)
json.dump(namespace["_report"], open("report.json", "w"))
"""


def seed_document() -> str:
    return SEED_DOC.read_text()


def runnable_blocks(document: str) -> list[str]:
    """The document's blocks with their imports translated, and what a reader adds."""
    blocks: list[str] = []
    for block in BLOCK.findall(document):
        blocks.append(translate_imports(block))
        blocks += [code for marker, code in FOLLOW_UPS.items() if marker in block]
    return blocks


def script_env() -> dict[str, str]:
    """A plain script's environment: no Django, database, Redis or data dir settings."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    return {k: os.environ[k] for k in keep if k in os.environ} | {"PYTHONPATH": str(ROOT)}


def run(args: list[str], cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, params).fetchall()


def test_every_seed_import_has_a_counterpart_and_only_imports_change():
    document = seed_document()
    seed_modules = set(re.findall(r"from (claude_code_sdk[\w.]*) import", document))
    assert seed_modules == set(SEED_MODULES)
    code = "from claude_code_sdk.training_data import (\n    X\n)\nx = 'claude_code_sdk'\n"
    assert translate_imports(code) == (
        "from trainingdash.sdk.training_data import (\n    X\n)\nx = 'claude_code_sdk'\n"
    )
    with pytest.raises(ValueError, match="claude_code_sdk.training_magic"):
        translate_imports("from claude_code_sdk.training_magic import X")


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory) -> tuple[Path, str, dict[str, Any]]:
    """Every block of the seed document, in order, in one namespace, as a reader would."""
    folder = tmp_path_factory.mktemp("seed")
    (folder / "blocks.json").write_text(json.dumps(runnable_blocks(seed_document())))
    (folder / "runner.py").write_text(RUNNER)
    stdout = run(["runner.py", "blocks.json"], folder)
    return folder, stdout, json.loads((folder / "report.json").read_text())


def test_the_quick_start_collects_a_scripted_session_offline(seed_run):
    folder, stdout, _ = seed_run
    db = folder / "training_data.db"
    assert "Training example saved!" in stdout
    [(execution, source, success, partial)] = rows(
        db,
        "SELECT e.id, e.source, e.success, e.is_partial FROM collection_execution e "
        "JOIN collection_task t ON t.id = e.task_id WHERE t.name = 'Fix Type Error'",
    )
    assert (source, success, partial) == ("scripted", 1, 0)
    types = rows(
        db, "SELECT type FROM collection_message WHERE execution_id = ? ORDER BY seq", execution
    )
    assert [t for (t,) in types][0] == "system" and types[-1] == ("result",)
    assert (
        rows(
            db, "SELECT count(*) FROM collection_trainingexample WHERE execution_id = ?", execution
        )[0][0]
        == 1
    )


def test_duckdb_analytics_and_the_batch_block_report_what_is_stored(seed_run):
    folder, stdout, _ = seed_run
    db = folder / "training_data.db"
    # The DuckDB block ran after the quick start alone.
    assert "Total examples: 1\nSuccess rate: 100.0%\n" in stdout
    assert (folder / "training_data.duckdb" / "state.json").is_file()
    generated = int(re.search(r"Generated (\d+) examples", stdout).group(1))
    golden = int(re.search(r"Golden examples: (\d+)", stdout).group(1))
    batch = rows(
        db,
        "SELECT count(x.id), sum(x.is_golden) FROM collection_trainingexample x "
        "JOIN collection_collectionjob j ON j.execution_id = x.execution_id "
        "WHERE j.batch_id IS NOT NULL",
    )
    assert (generated, golden) == batch[0] and generated == 60  # ten per category
    categories = rows(
        db,
        "SELECT DISTINCT t.category FROM collection_collectionjob j "
        "JOIN collection_task t ON t.id = j.task_id",
    )
    assert len(categories) == 6


def test_the_custom_scorer_scores_a_session(seed_run):
    folder, _, report = seed_run
    db = folder / "training_data.db"
    [(execution, score, success, cost)] = rows(
        db,
        "SELECT e.id, x.quality_score, e.success, e.cost_usd FROM collection_trainingexample x "
        "JOIN collection_execution e ON e.id = x.execution_id WHERE x.id = ?",
        report["custom"]["pk"],
    )
    actions = rows(
        db, "SELECT count(*) FROM collection_agentaction WHERE execution_id = ?", execution
    )
    # The seed's formula: 0.5 success (the template's verifier says no: nothing was fixed),
    # 0.3 under ten actions, 0.2 under $0.05.
    expected = 0.5 * bool(success) + 0.3 * (actions[0][0] < 10) + 0.2 * (cost < 0.05)
    assert score == report["custom"]["score"] == pytest.approx(expected)
    assert success == 0


def test_every_export_call_writes_its_files(seed_run):
    folder, _, report = seed_run
    db = folder / "training_data.db"
    examples = rows(db, "SELECT count(*) FROM collection_trainingexample")[0][0]
    jsonl = (folder / "fine_tuning.jsonl").read_text().splitlines()
    assert len(jsonl) >= examples - 1 and all(json.loads(line)["messages"] for line in jsonl)
    assert json.loads((folder / "conversations.json").read_text())
    assert (folder / "instructions.jsonl").read_text().strip()
    evaluation = json.loads((folder / "eval_dataset.json").read_text())
    assert len(evaluation) == report["golden"] > 0
    assert (folder / "hf_dataset" / "dataset" / "dataset_dict.json").is_file()
    assert "<html" in (folder / "analytics" / "analytics.html").read_text()[:500].lower()
    with (folder / "analytics" / "summary.csv").open() as summary:
        figures = {row[0]: row[1] for row in csv.reader(summary)}
    assert int(figures["total_examples"]) == report["at_analytics"] > 1


def test_multi_agent_and_chain_blocks_store_their_examples(seed_run):
    folder, _, _ = seed_run
    db = folder / "training_data.db"
    actions = rows(
        db,
        "SELECT a.agent_id, a.role, a.tool_name FROM collection_agentaction a "
        "JOIN collection_execution e ON e.id = a.execution_id WHERE e.session_id = 'session_123'",
    )
    assert actions == [("backend_dev", "specialist", "Write")]
    metrics = rows(
        db,
        "SELECT e.performance_metrics FROM collection_execution e "
        "JOIN collection_trainingexample x ON x.execution_id = e.id "
        "WHERE e.performance_metrics LIKE '%debug_chain%'",
    )
    steps = json.loads(metrics[0][0])["steps"]
    assert [s["name"] for s in steps] == ["identify", "fix", "verify"]


def test_filters_match_the_stored_examples(seed_run):
    folder, _, report = seed_run
    db = folder / "training_data.db"
    hard = rows(
        db,
        "SELECT count(*) FROM collection_trainingexample x JOIN collection_execution e "
        "ON e.id = x.execution_id JOIN collection_task t ON t.id = e.task_id "
        "WHERE t.difficulty = 'hard'",
    )
    assert report["hard"] == hard[0][0]
    others = rows(
        db,
        "SELECT count(*) FROM collection_trainingexample x JOIN collection_execution e "
        "ON e.id = x.execution_id WHERE e.source = 'scripted' AND e.status = 'completed' "
        "AND e.cost_usd <= 1.0 AND e.num_turns >= 2 AND EXISTS (SELECT 1 FROM "
        "collection_toolcall c WHERE c.execution_id = e.id AND c.name = 'Read')",
    )
    assert report["others"] == others[0][0] > 0


def test_a_scripts_examples_show_in_the_dashboard_on_the_same_database(seed_run, tmp_path):
    folder, _, _ = seed_run
    page = textwrap.dedent(
        """
        import trainingdash
        trainingdash.setup()
        from django.contrib.auth.models import User
        from django.test import Client
        from django.test.utils import setup_test_environment
        from collection.roles import VIEWER, assign_role, sync_roles
        setup_test_environment()
        sync_roles()
        user = User.objects.create_user("reader")
        assign_role(user, VIEWER)
        client = Client()
        client.force_login(user)
        from django.urls import reverse
        response = client.get(reverse("collection-example-list"), {"q": "Fix Type Error"})
        print(response.status_code, "Fix Type Error" in response.content.decode())
        """
    )
    env = script_env() | {
        "DATABASE_URL": f"sqlite:///{folder / 'training_data.db'}",
        "DEBUG": "1",
        "TRAININGDASH_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", page], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "True"]


def test_the_example_script_runs_the_whole_pipeline_offline(tmp_path):
    stdout = run([str(ROOT / "examples" / "training_data_generation.py")], tmp_path)
    out = tmp_path / "training_data"
    db = out / "training_data.db"
    examples = rows(db, "SELECT count(*) FROM collection_trainingexample")[0][0]
    sources = dict(rows(db, "SELECT source, count(*) FROM collection_execution GROUP BY 1"))
    assert examples >= 10 and sources["scripted"] >= 9  # the multi-agent one is "imported"
    from exports.formats import FORMATS

    written = {p.name for p in (out / "exports").iterdir()}
    for name, fmt in FORMATS.items():
        assert f"{name}{Path(fmt.filename).suffix}" in written
        assert f"7. export {name}:" in stdout
    assert (out / "exports" / "hf_dataset" / "dataset" / "dataset_dict.json").is_file()
    # the fixed and the given-up attempt at one task make a preference pair
    assert len((out / "exports" / "preference.jsonl").read_text().splitlines()) >= 1
    assert (out / "reports" / "analytics.html").is_file()
    assert (out / "reports" / "by_category_difficulty.csv").is_file()
    assert (out / "training_data.duckdb" / "state.json").is_file()
    assert f"8. analytics: {examples} examples" in stdout
    # The script's runtime data stays beside its database, not in the repository's data dir.
    assert (out / "redis").is_dir() and (out / "sandboxes").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["training_data"]
