"""The seed's script API: SQLiteTrainingStorage + get_training_examples, from a plain script."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from collection.storage import TrainingStorage
from tests.factories import make_example, make_execution, make_task

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_get_training_examples_takes_the_seeds_filters_and_limit():
    debugging, testing = make_task(category="debugging"), make_task(category="testing")
    make_example(make_execution(debugging), quality_score=0.9, is_golden=True)
    make_example(make_execution(debugging), quality_score=0.5)
    make_example(make_execution(testing), quality_score=0.95, is_golden=True)
    storage = TrainingStorage()
    found = storage.get_training_examples(
        filters={"min_quality": 0.8, "category": "debugging", "is_golden": True}, limit=100
    )
    assert [e.quality_score for e in found] == [0.9]
    assert len(storage.get_training_examples(limit=2)) == 2
    with pytest.raises(ValueError, match="colour"):
        storage.get_training_examples(filters={"colour": "red"})


def test_a_plain_script_uses_sqlite_training_storage(tmp_path):
    script = textwrap.dedent(
        """
        from collection.storage import SQLiteTrainingStorage
        storage = SQLiteTrainingStorage("training_data.db")
        from collection.sessions.multi_agent import MultiAgentCollector
        from collection.schema import TaskDefinition
        task = TaskDefinition(name="Fix Type Error", category="debugging", difficulty="easy")
        collector = MultiAgentCollector(storage)
        collector.track_agent_action("lead", "coordinator", "plan")
        collector.create_multi_agent_example(task, "s1", "done", True, 0.01)
        print(len(storage.get_training_examples(filters={"difficulty": "easy"}, limit=10)))
        """
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    assert (tmp_path / "training_data.db").stat().st_size > 0


def run_script(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=cwd,
        env=base | env,
        capture_output=True,
        text=True,
    )


@pytest.mark.backend_independent
def test_a_script_may_import_the_seed_names_before_its_storage_chooses_the_file(tmp_path):
    done = run_script(
        """
        from django.conf import settings
        from trainingdash.sdk.training_data import SQLiteTrainingStorage, TaskDefinition

        storage = SQLiteTrainingStorage("out/training_data.db")
        task = TaskDefinition(name="t", category="debugging").get_or_create_task()
        print(settings.DATA_DIR.name, settings.REDIS_EMBEDDED_DB.parent.parent.name)
        try:
            SQLiteTrainingStorage("other.db")
        except ValueError as error:
            print(error)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    folders, refused = done.stdout.splitlines()
    # the script's runtime data (sandboxes, embedded Redis) lives beside its database
    assert folders.split() == ["out", "out"]
    assert "can't switch to another file" in refused and "other.db" in refused
    assert not (tmp_path / "other.db").exists()
    with sqlite3.connect(tmp_path / "out" / "training_data.db") as db:
        assert db.execute("SELECT name FROM collection_task").fetchall() == [("t",)]


@pytest.mark.backend_independent
def test_a_database_url_in_the_environment_wins_over_a_storages_file(tmp_path):
    done = run_script(
        """
        from trainingdash.sdk.training_data import SQLiteTrainingStorage
        SQLiteTrainingStorage("training_data.db")
        """,
        tmp_path,
        DATABASE_URL=f"sqlite:///{tmp_path / 'team.db'}",
    )
    assert done.returncode == 1
    assert "team.db" in done.stderr and "can't switch" in done.stderr
    assert not (tmp_path / "training_data.db").exists()
