"""The seed's script API: SQLiteTrainingStorage + get_training_examples, from a plain script."""

from __future__ import annotations

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
