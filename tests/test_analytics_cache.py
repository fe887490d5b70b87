"""The analytics result cache: one computation per snapshot version and filters, shared by
processes; older figures served (with their own date) while a new version's are computed; only
the same filters' results served; corrupt files ignored; the folder capped."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from collection.queries import ExampleFilters
from exports.analytics import cache, engine
from exports.analytics.snapshot import read_state, refresh_snapshot
from tests.factories import make_example, make_execution, make_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def snap(tmp_path: Path) -> Path:
    return tmp_path / "analytics"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ExampleFilters]]:
    """The filters of every computation the cache runs in this process."""
    seen: list[ExampleFilters] = []
    real = cache.compute

    def counted(filters: ExampleFilters, *args: Any) -> engine.Analytics:
        seen.append(filters)
        return real(filters, *args)

    monkeypatch.setattr(cache, "compute", counted)
    yield seen
    cache.wait_for_computations(60)


def make_world() -> None:
    debugging = make_task(name="a", category="debugging", difficulty="easy")
    testing = make_task(name="b", category="testing", difficulty="hard")
    make_example(make_execution(debugging), quality_score=0.9, is_golden=True)
    make_example(make_execution(debugging, success=False), quality_score=0.3)
    make_example(make_execution(testing, model="claude-x"), quality_score=0.7)


def version(snap: Path) -> int:
    state = read_state(snap)
    assert state is not None
    return int(state["version"])


def results(snap: Path) -> list[str]:
    return sorted(p.name for p in (snap / cache.FOLDER).glob("*.json"))


def test_same_filters_and_version_compute_once_and_equal_the_engine(snap, calls):
    make_world()
    refresh_snapshot(directory=snap)
    debugging = ExampleFilters(category="debugging")
    first = cache.cached_analytics(debugging, directory=snap)
    again = cache.cached_analytics(ExampleFilters(category="debugging"), directory=snap)
    assert len(calls) == 1
    assert len(results(snap)) == 1
    direct = engine.get_analytics(debugging, refresh=False, directory=snap)
    for served in (first, again):  # the file's figures are the engine's, types included
        assert served.summary == direct.summary
        assert served.tables == direct.tables
        assert served.as_of == direct.as_of
        assert served.version == direct.version == version(snap)
        assert not served.stale
    assert again.summary["total_examples"] == 2
    day = again.tables["over_time"].rows[0][0]
    assert type(day) is type(direct.tables["over_time"].rows[0][0])  # a date, not a string


def test_the_sort_changes_no_figure_and_shares_the_entry(snap, calls):
    make_world()
    refresh_snapshot(directory=snap)
    cache.cached_analytics(ExampleFilters(sort="quality"), directory=snap)
    served = cache.cached_analytics(ExampleFilters(sort="created"), directory=snap)
    assert len(calls) == 1
    assert served.filters.sort == "created"  # the request's own filters, for its links


def test_different_filters_are_separate_entries(snap, calls):
    make_world()
    refresh_snapshot(directory=snap)
    everything = cache.cached_analytics(None, directory=snap)
    testing = cache.cached_analytics(ExampleFilters(category="testing"), directory=snap)
    golden = cache.cached_analytics(ExampleFilters(is_golden=True), directory=snap)
    assert [c.model_dump(exclude_defaults=True) for c in calls] == [
        {},
        {"category": "testing"},
        {"is_golden": True},
    ]
    assert len(results(snap)) == 3
    assert everything.summary["total_examples"] == 3
    assert testing.summary["total_examples"] == 1
    assert golden.summary["total_examples"] == 1
    assert cache.cached_analytics(ExampleFilters(category="testing"), directory=snap) == testing
    assert len(calls) == 3


def test_a_new_version_serves_the_old_figures_while_computing_the_new(snap, calls):
    make_world()
    refresh_snapshot(directory=snap)
    before = cache.cached_analytics(None, directory=snap)
    make_example(make_execution(make_task(name="c")), quality_score=0.5)
    stats = refresh_snapshot(directory=snap)
    assert before.version is not None and stats.version > before.version

    stale = cache.cached_analytics(None, directory=snap)
    assert stale.stale
    assert stale.summary["total_examples"] == 3  # the old version's figures...
    assert (stale.version, stale.as_of) == (before.version, before.as_of)  # ...and date
    cache.wait_for_computations(60)
    assert len(calls) == 2  # the new version, computed in the background

    fresh = cache.cached_analytics(None, directory=snap)
    assert not fresh.stale
    assert fresh.summary["total_examples"] == 4
    assert fresh.version == stats.version
    assert fresh.as_of is not None and before.as_of is not None and fresh.as_of > before.as_of
    assert len(calls) == 2
    key = cache._key(cache.key_material(ExampleFilters()))
    assert results(snap) == [f"{key}-{fresh.version}.json"]  # the older version's removed


def test_waiting_computes_the_new_version_in_the_request(snap, calls):
    make_world()
    refresh_snapshot(directory=snap)
    cache.cached_analytics(None, directory=snap)
    make_example(make_execution(make_task(name="c")), quality_score=0.5)
    refresh_snapshot(directory=snap)
    served = cache.cached_analytics(None, directory=snap, wait=True)
    assert not served.stale
    assert served.summary["total_examples"] == 4
    assert len(calls) == 2


def test_a_refresh_that_found_nothing_keeps_the_result_with_its_newer_date(snap, calls):
    make_world()
    refresh_snapshot(directory=snap)
    first = cache.cached_analytics(None, directory=snap)
    refresh_snapshot(directory=snap)  # nothing changed: same version, later as_of
    state = read_state(snap)
    assert state is not None and state["version"] == first.version
    served = cache.cached_analytics(None, directory=snap)
    assert len(calls) == 1
    assert served.as_of == engine.as_of(state)
    assert first.as_of is not None and served.as_of is not None and served.as_of > first.as_of


def test_a_corrupt_or_foreign_file_is_ignored_and_recomputed(snap, calls):
    make_world()
    refresh_snapshot(directory=snap)
    first = cache.cached_analytics(None, directory=snap)
    (path,) = (snap / cache.FOLDER).glob("*.json")
    path.write_text('{"material": {"format": 1}, "version": ')  # cut short
    assert cache.cached_analytics(None, directory=snap) == first
    assert len(calls) == 2
    assert json.loads(path.read_text())["version"] == first.version  # rewritten whole

    # Another filter's result under this key's name is never served for it.
    testing = cache.cached_analytics(ExampleFilters(category="testing"), directory=snap)
    testing_path = next(p for p in (snap / cache.FOLDER).glob("*.json") if p != path)
    path.write_text(testing_path.read_text())
    served = cache.cached_analytics(None, directory=snap)
    assert served.summary["total_examples"] == 3 != testing.summary["total_examples"]
    assert len(calls) == 4


def test_the_folder_keeps_the_newest_results(snap, calls, monkeypatch):
    monkeypatch.setattr(cache, "KEEP", 2)
    make_world()
    refresh_snapshot(directory=snap)
    for category in ("debugging", "testing", "writing"):
        cache.cached_analytics(ExampleFilters(category=category), directory=snap)
        time.sleep(0.01)  # distinct modification times, not a timing assertion
    kept = results(snap)
    assert len(kept) == 2
    writing = cache._key(cache.key_material(ExampleFilters(category="writing")))
    debugging = cache._key(cache.key_material(ExampleFilters(category="debugging")))
    assert any(name.startswith(writing) for name in kept)
    assert not (snap / cache.FOLDER / f"{debugging}.lock").exists()
    cache.cached_analytics(ExampleFilters(category="debugging"), directory=snap)
    assert len(calls) == 4  # the removed one computed again


CHILD = """
import json, os, sys
from pathlib import Path
import django
django.setup()
from exports.analytics import cache
directory, log, ready = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
real = cache.compute
def counted(*args):
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\\n")
    return real(*args)
cache.compute = counted
ready.touch()
served = cache.cached_analytics(None, directory=directory)
print(json.dumps({"total": served.summary["total_examples"], "version": served.version}))
"""


def test_two_processes_asking_at_once_compute_once(snap, tmp_path):
    make_world()
    refresh_snapshot(directory=snap)
    folder = snap / cache.FOLDER
    folder.mkdir(parents=True)
    key = cache._key(cache.key_material(ExampleFilters()))
    log = tmp_path / "computed.log"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings")
    env["PYTHONPATH"] = str(settings.BASE_DIR)
    with open(folder / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # both start while the key is being computed
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, str(snap), str(log), str(tmp_path / f"ready{n}")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(2)
        ]
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"ready{n}").exists() for n in range(2)):
            assert time.monotonic() < deadline, "the children never started"
            assert all(c.poll() is None for c in children), children[0].stderr
            time.sleep(0.05)
        fcntl.flock(lock, fcntl.LOCK_UN)
    outputs = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        outputs.append(json.loads(out.splitlines()[-1]))
    assert outputs == [{"total": 3, "version": version(snap)}] * 2
    assert len(log.read_text().splitlines()) == 1


def test_a_snapshot_rebuilt_from_scratch_never_serves_the_old_ones_results(snap, calls):
    make_world()
    refresh_snapshot(directory=snap)
    first = cache.cached_analytics(None, directory=snap)
    (path,) = (snap / cache.FOLDER).glob("*.json")
    # As if the old snapshot had gone further: a result of a version the new one has not reached.
    ahead = path.with_name(path.name.replace(f"-{first.version}.", f"-{version(snap) + 5}."))
    data = json.loads(path.read_text())
    data["version"] = version(snap) + 5
    data["summary"]["total_examples"] = 99
    ahead.write_text(json.dumps(data))
    path.unlink()
    served = cache.cached_analytics(None, directory=snap)
    assert served.summary["total_examples"] == 3
    assert served.version == version(snap)
    assert len(calls) == 2
    assert not ahead.exists()
