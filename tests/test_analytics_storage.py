"""The seed's `DuckDBTrainingStorage(path).get_analytics()`: its dict, in the dashboard and from
a plain script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from collection.models import TrainingExample
from exports.analytics.engine import TABLES, get_analytics
from exports.analytics.storage import DuckDBTrainingStorage
from tests.factories import make_example, make_execution

TABLE_NAMES = {
    "over_time",
    "by_category_difficulty",
    "quality_histogram",
    "cost_by_model",
    "cost_by_source",
    "token_lengths",
    "tool_usage",
    "turns",
    "duration",
    "review_by_reviewer",
    "failure_reasons",
    "duplicates",
}


@pytest.mark.django_db
def test_get_analytics_returns_the_seeds_figures_and_every_breakdown(tmp_path: Path) -> None:
    make_example(make_execution(), quality_score=0.9, is_golden=True)
    make_example(make_execution(success=False), quality_score=0.3)
    analytics = DuckDBTrainingStorage(tmp_path / "training_data.duckdb").get_analytics()
    assert analytics["total_examples"] == TrainingExample.objects.count() == 2
    assert analytics["success_rate"] == 0.5
    assert analytics["golden_examples"] == 1
    assert analytics["avg_quality"] == analytics["average_quality"] == pytest.approx(0.6)
    assert set(TABLE_NAMES) <= set(analytics)
    assert len(TABLES) == len(TABLE_NAMES)
    assert analytics["by_category_difficulty"] == [
        {
            "category": "debugging",
            "difficulty": "easy",
            "examples": 2,
            "success_rate": 0.5,
            "avg_quality": pytest.approx(0.6),
            "target_pass_rate": 0.88,
        }
    ]


@pytest.mark.django_db
def test_its_figures_are_the_engines(tmp_path: Path) -> None:
    make_example(make_execution(model="claude-sonnet-4-5"), quality_score=0.7)
    seed = DuckDBTrainingStorage(tmp_path / "a.duckdb").get_analytics({"min_quality": 0.5})
    engine = get_analytics(directory=tmp_path / "b")
    assert seed["total_examples"] == engine.summary["total_examples"] == 1
    assert seed["cost_by_model"] == engine.tables["cost_by_model"].as_dicts()


@pytest.mark.django_db
def test_the_snapshot_is_kept_at_the_path(tmp_path: Path) -> None:
    make_example()
    DuckDBTrainingStorage(tmp_path / "training_data.duckdb").get_analytics()
    assert (tmp_path / "training_data.duckdb" / "state.json").exists()


def test_a_plain_script_gets_analytics_without_setting_django_up(tmp_path: Path) -> None:
    script = (
        "import json\n"
        "from exports.analytics.storage import DuckDBTrainingStorage\n"
        "storage = DuckDBTrainingStorage('training_data.duckdb')\n"
        "a = storage.get_analytics()\n"
        "print(json.dumps({k: a[k] for k in ('total_examples', 'success_rate', "
        "'golden_examples')}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TRAININGDASH_"))}
    env.pop("DATABASE_URL", None)
    env["PYTHONPATH"] = str(settings.BASE_DIR)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "total_examples": 0,
        "success_rate": 0.0,
        "golden_examples": 0,
    }
    assert (tmp_path / "training_data.db").exists()
    assert (tmp_path / "training_data.duckdb" / "state.json").exists()
