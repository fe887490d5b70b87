"""The task template library: built-in templates are sound data, and each one really solves."""

from __future__ import annotations

import json
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from collection.jobs.runner import create_job, run_job
from collection.models import AgentRole, Difficulty, JobStatus, TrainingExample
from collection.schema import TaskDefinition
from collection.scripted_model.script import parse_script, plan, session_salt
from collection.sessions.spec import TemplateRef
from collection.task_templates import (
    BUILTIN_DIR,
    CATEGORIES,
    TaskTemplate,
    TaskTemplateLibrary,
    TemplateError,
    add_user_template,
    load_template,
    resolve_spec,
)
from collection.task_templates.authoring import edit_steps
from collection.task_templates.library import stored_template
from collection.task_templates.store import fetch, store_template

# SQLite pass only: templates, verifiers and scripts are the same on any database.
pytestmark = pytest.mark.backend_independent

LIBRARY = TaskTemplateLibrary.load([])
BUILTIN = LIBRARY.templates()
ACCESSORS = {  # the seed's names, called on the class (the default library)
    "code_review": "get_code_review_tasks",
    "debugging": "get_debugging_tasks",
    "refactoring": "get_refactoring_tasks",
    "implementation": "get_implementation_tasks",
    "testing": "get_testing_tasks",
    "multi_agent": "get_multi_agent_tasks",
}


def by_name(templates: list[TaskTemplate]) -> list[pytest.param]:
    return [pytest.param(t, id=t.name) for t in templates]


# --- the built-in library ----------------------------------------------------------------------


def test_every_builtin_template_loads():
    assert LIBRARY.errors == []
    assert {t.root.parent.parent for t in BUILTIN} == {BUILTIN_DIR}
    assert all(t.builtin for t in BUILTIN)


@pytest.mark.parametrize("category", CATEGORIES)
def test_each_category_has_five_templates_over_all_four_difficulties(category):
    templates = LIBRARY.templates(category=category)
    assert len(templates) >= 5
    assert {t.difficulty for t in templates} == set(Difficulty)


@pytest.mark.parametrize("category", CATEGORIES)
def test_the_seed_accessors_return_task_definitions_with_their_verifier(category, settings):
    settings.TRAININGDASH_TEMPLATE_DIRS = []
    tasks = getattr(TaskTemplateLibrary, ACCESSORS[category])()
    assert len(tasks) == len(LIBRARY.templates(category=category))
    for task in tasks:
        assert isinstance(task, TaskDefinition) and task.category == category
        template = LIBRARY.get(task.source_template)
        assert task.metadata["template"] == template.name
        assert task.metadata["verifier"] == template.verifier
        assert "{python}" not in template.verifier and "{checks}" not in template.verifier


def test_templates_filter_by_category_and_difficulty():
    hard_debugging = LIBRARY.templates(category="debugging", difficulty="hard")
    assert hard_debugging
    assert all(t.category == "debugging" and t.difficulty == "hard" for t in hard_debugging)
    assert LIBRARY.get(hard_debugging[0].name) is hard_debugging[0]
    with pytest.raises(KeyError, match="no_such_template"):
        LIBRARY.get("no_such_template")


@pytest.mark.parametrize("template", by_name(BUILTIN))
def test_the_verifier_fails_on_the_workspace_and_passes_on_the_solution(template, tmp_path):
    fresh = template.run_verifier(template.materialize(tmp_path / "fresh"))
    assert not fresh.passed, f"{template.name}: the untouched workspace already passes"
    solved = template.run_verifier(template.materialize(tmp_path / "solved", solved=True))
    assert solved.passed, f"{template.name}: the solution fails:\n{solved.output}"


# --- each template's scripted policy solves it through the real CLI ----------------------------


def run_template(template: TaskTemplate, capture, *, seed: int = 0, variation=None):
    task = template.task_definition().get_or_create_task()
    with capture(execute=False):
        job = create_job(
            task, template.job_spec(seed=seed, variation=variation), kind=template.job_kind
        )
    return run_job(job.pk)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("template", by_name(BUILTIN))
def test_the_scripted_policy_solves_the_template_end_to_end(
    template, django_capture_on_commit_callbacks
):
    job = run_template(template, django_capture_on_commit_callbacks, variation={})
    assert job.status == JobStatus.SUCCEEDED, job.error
    execution = job.execution
    verdict = execution.performance_metrics.get("verifier", {})
    assert execution.success is True, (execution.error, verdict.get("output"))
    assert verdict["exit_code"] == 0
    assert execution.task.source_template == template.name
    # Every Read and Edit of the script lands exactly (a Bash run of failing tests may fail).
    assert not execution.tool_calls.filter(is_error=True).exclude(name="Bash").exists()
    if template.job_kind == "chain":
        steps = execution.performance_metrics["steps"]
        assert [s["name"] for s in steps] == [step.name for step in template.manifest.chain]
        assert all(step["status"] == "completed" for step in steps)
    if template.job_kind == "multi_agent":
        specialists = execution.actions.filter(role=AgentRole.SPECIALIST)
        assert set(specialists.values_list("agent_id", flat=True)) == set(template.manifest.agents)


@pytest.mark.django_db(transaction=True)
def test_variation_knobs_give_a_genuine_spread_of_outcomes(django_capture_on_commit_callbacks):
    template = LIBRARY.get("fix_failing_median")
    knobs = {"wander": 0.3, "tool_error": 0.5, "give_up": 0.5}

    def planned(seed: int) -> list[tuple[str, str | None]]:
        # The script as the worker plays it (filled on this machine), with the policy's salt.
        script = resolve_spec(template.job_spec(seed, variation=knobs)).script
        steps = plan(parse_script(script), session_salt(seed, script))
        return [(step.kind, step.tool) for step in steps]

    plans = {seed: planned(seed) for seed in range(40)}
    gives_up = next(seed for seed, steps in plans.items() if ("give_up", None) in steps)
    stumbles = next(
        seed
        for seed, steps in plans.items()
        if ("error", "Edit") in steps and all(kind != "give_up" for kind, _ in steps)
    )
    jobs = {
        seed: run_template(template, django_capture_on_commit_callbacks, seed=seed, variation=knobs)
        for seed in (gives_up, stumbles)
    }
    quitter, stumbler = jobs[gives_up].execution, jobs[stumbles].execution
    assert quitter.success is False and "verifier" in quitter.performance_metrics
    assert not quitter.tool_calls.filter(name="Edit").exists()
    assert stumbler.success is True
    assert stumbler.tool_calls.filter(name="Edit", is_error=True).exists()
    assert stumbler.training_example.quality_score > quitter.training_example.quality_score


# --- job specs ---------------------------------------------------------------------------------


def bash_commands(script: dict) -> list[str]:
    commands = []
    for step in script["steps"]:
        if step.get("tool") == "Bash":
            commands.append(step["input"]["command"])
        if "subagent" in step:
            commands += bash_commands(step["subagent"])
    return commands


def test_a_session_job_spec_plays_the_script_with_the_difficulty_default_knobs():
    template = LIBRARY.get("fix_failing_median")
    spec = template.job_spec(seed=7)
    assert template.job_kind == "session" and spec.seed == 7 and spec.backend == "scripted"
    assert spec.prompt == template.prompt and spec.verifier == template.manifest.verifier
    # It names its template and keeps the placeholders: no path of this machine is stored.
    assert spec.workspace is None
    assert spec.template == TemplateRef(name="fix_failing_median", builtin=True)
    assert str(BUILTIN_DIR) not in spec.model_dump_json()
    assert sys.executable not in spec.model_dump_json()
    assert {"Read", "Edit", "Bash", "Glob", "Grep"} <= set(spec.allowed_tools)
    # Whether it fails is the calibration's plan, not the give_up knob's.
    assert spec.script["variation"] == template.variation.model_dump() | {"give_up": 0.0}
    assert spec.script.get("outcome", "success") == template.planned_outcome(7)
    assert all(c.startswith("{python} ") for c in bash_commands(spec.script))
    # The worker fills them with its own paths right before the session.
    resolved = resolve_spec(spec)
    assert resolved.workspace == str(template.workspace_dir)
    assert resolved.verifier == template.verifier
    assert all(
        "{python}" not in c and c.startswith(sys.executable) for c in bash_commands(resolved.script)
    )
    straight = template.job_spec(variation={}).script
    assert straight["variation"] == {
        "wander": 0.0,
        "tool_error": 0.0,
        "give_up": 0.0,
        "redundant": 0.0,
        "explore": 0.0,
    }
    assert "outcome" not in straight  # an explicit variation plays the success path
    assert template.job_spec(backend="claude").script is None


def test_harder_templates_vary_more_by_default():
    easy = LIBRARY.templates(difficulty="easy")[0].variation
    expert = LIBRARY.templates(difficulty="expert")[0].variation
    assert expert.give_up > easy.give_up and expert.tool_error > easy.tool_error


def test_a_multi_agent_job_spec_defines_its_agents_and_may_delegate():
    template = LIBRARY.get("full_stack_feature")
    spec = template.job_spec()
    assert template.job_kind == "multi_agent"
    assert set(spec.agents) == {"backend_dev", "frontend_dev", "qa"}
    assert spec.agents["qa"].tools == ["Read", "Bash", "Glob", "Grep"]
    assert {"Agent", "Edit", "Bash"} <= set(spec.allowed_tools)
    delegations = [s for s in spec.script["steps"] if s.get("tool") == "Agent"]
    assert [d["input"]["subagent_type"] for d in delegations] == [
        "backend_dev",
        "frontend_dev",
        "qa",
    ]
    assert all(d["subagent"]["variation"] == spec.script["variation"] for d in delegations)
    stored, filled = bash_commands(spec.script), bash_commands(resolve_spec(spec).script)
    assert stored and all(c.startswith("{python} ") for c in stored)  # sub-agents' too
    assert len(filled) == len(stored) and all(c.startswith(sys.executable) for c in filled)


def test_a_chain_job_spec_carries_one_script_per_step():
    template = LIBRARY.get("debug_chain_durations")
    spec = template.job_spec(variation={"give_up": 0.5})
    assert template.job_kind == "chain" and spec.script is None
    assert [s.name for s in spec.chain.ordered_steps()] == ["identify", "fix", "verify"]
    for step in spec.chain.steps:
        assert step.extra["script"]["variation"]["give_up"] == 0.5
        assert "Glob" in step.allowed_tools
    assert "Edit" not in spec.chain.steps[0].allowed_tools
    stored = [c for s in spec.chain.steps for c in bash_commands(s.extra["script"])]
    assert stored and all(c.startswith("{python} ") for c in stored)  # filled by the worker
    resolved = resolve_spec(spec).chain
    assert resolved is not None
    filled = [c for s in resolved.steps for c in bash_commands(s.extra["script"])]
    assert all(c.startswith(sys.executable) for c in filled) and len(filled) == len(stored)


# --- user templates ----------------------------------------------------------------------------


def user_template(root: Path, name: str, source: str = "fix_failing_median") -> Path:
    """A copy of a built-in template under <root>/<category>/<name>/, renamed."""
    original = LIBRARY.get(source)
    folder = root / original.category / name
    shutil.copytree(original.root, folder)
    edit_manifest(folder, lambda m: m.update(name=name))
    return folder


def edit_manifest(folder: Path, change) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def first_step(manifest: dict, tool: str) -> int:
    return next(i for i, step in enumerate(manifest["script"]) if step.get("tool") == tool)


def drop_first_read_of_stats(manifest: dict) -> None:
    manifest["script"] = [
        s
        for s in manifest["script"]
        if s.get("input", {}).get("file_path") != "stats.py" or s.get("tool") != "Read"
    ]


MALFORMED = {
    "bad_json": (lambda f: (f / "manifest.json").write_text('{"name": "bad_json",'), "(json)"),
    "unknown_field": (lambda f: edit_manifest(f, lambda m: m.update(colour="red")), "colour"),
    "missing_field": (lambda f: edit_manifest(f, lambda m: m.pop("title")), "title"),
    "wrong_category": (
        lambda f: edit_manifest(f, lambda m: m.update(category="cooking")),
        "category",
    ),
    "wrong_difficulty": (
        lambda f: edit_manifest(f, lambda m: m.update(difficulty="impossible")),
        "difficulty",
    ),
    "name_mismatch": (lambda f: edit_manifest(f, lambda m: m.update(name="other_name")), "name"),
    "no_workspace": (lambda f: shutil.rmtree(f / "workspace"), "workspace"),
    "no_verifier": (lambda f: edit_manifest(f, lambda m: m.pop("verifier")), "verifier"),
    "empty_verifier": (lambda f: edit_manifest(f, lambda m: m.update(verifier="")), "verifier"),
    "stale_edit": (
        lambda f: edit_manifest(
            f, lambda m: m["script"][first_step(m, "Edit")]["input"].update(old_string="nope")
        ),
        "script[4].input.old_string",
    ),
    "edit_before_read": (
        lambda f: edit_manifest(f, drop_first_read_of_stats),
        "script[3].input.file_path",
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_user_template_is_reported_by_file_and_field_while_good_ones_load(
    case, tmp_path
):
    corrupt, field = MALFORMED[case]
    good = user_template(tmp_path, "good_user_template")
    bad = user_template(tmp_path, case)
    corrupt(bad)
    library = TaskTemplateLibrary.load([tmp_path])
    assert library.get("good_user_template").root == good.resolve()
    assert not library.get("good_user_template").builtin
    assert case not in {t.name for t in library}
    assert len(library) == len(LIBRARY) + 1
    [error] = library.errors
    assert error.field == field
    assert error.file.startswith(str(bad.resolve()))
    assert str(bad.resolve()) in str(error) and field in str(error)


def test_a_multi_agent_template_may_only_delegate_to_its_own_agents(tmp_path):
    bad = user_template(tmp_path, "ghost_delegate", source="review_and_fix_pair")
    edit_manifest(bad, lambda m: m["script"][1]["input"].update(subagent_type="ghost"))
    [error] = TaskTemplateLibrary.load([tmp_path]).errors
    assert error.field == "script[1].input.subagent_type" and "'ghost'" in str(error)


def test_a_user_template_named_like_a_builtin_is_reported_and_the_builtin_kept(tmp_path):
    impostor = user_template(tmp_path, "fix_failing_median")
    edit_manifest(impostor, lambda m: m.update(title="Impostor"))
    library = TaskTemplateLibrary.load([tmp_path])
    assert library.get("fix_failing_median").builtin
    [error] = library.errors
    assert error.field == "name" and "already defined" in str(error)


def test_the_default_library_reads_the_settings_template_dirs(tmp_path, settings):
    user_template(tmp_path, "from_settings")
    settings.TRAININGDASH_TEMPLATE_DIRS = [tmp_path, tmp_path / "missing"]
    names = {task.source_template for task in TaskTemplateLibrary.get_debugging_tasks()}
    assert "from_settings" in names and "fix_failing_median" in names
    assert TaskTemplateLibrary.get("from_settings").category == "debugging"


def test_add_user_template_copies_a_valid_folder_under_its_category(tmp_path):
    source = user_template(tmp_path / "upload", "uploaded_median")
    target = tmp_path / "templates"
    added = add_user_template(source, target)
    assert added.root == (target / "debugging" / "uploaded_median").resolve()
    assert (added.workspace_dir / "stats.py").read_text() == (
        source / "workspace" / "stats.py"
    ).read_text()
    assert added.check() == []
    assert TaskTemplateLibrary.load([target]).get("uploaded_median").title == added.title
    with pytest.raises(TemplateError, match="already exists"):
        add_user_template(source, target)


def test_add_user_template_copies_nothing_from_a_malformed_folder(tmp_path):
    target = tmp_path / "templates"
    for case, (corrupt, field) in MALFORMED.items():
        if case == "name_mismatch":
            continue  # a folder being added may have any name
        source = user_template(tmp_path / "upload", case)
        corrupt(source)
        with pytest.raises(TemplateError) as raised:
            add_user_template(source, target)
        assert raised.value.field == field
    assert not target.exists()  # refused before anything is made, even the category folder


def test_add_user_template_refuses_a_builtin_name_and_symlinks(tmp_path):
    source = user_template(tmp_path / "upload", "renamed")
    edit_manifest(source, lambda m: m.update(name="fix_failing_median"))
    with pytest.raises(TemplateError, match="already exists") as raised:
        add_user_template(source, tmp_path / "templates")
    assert raised.value.field == "name"
    linked = user_template(tmp_path / "upload2", "linked")
    (linked / "workspace" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(TemplateError, match="symbolic link"):
        add_user_template(linked, tmp_path / "templates")
    assert not (tmp_path / "templates").exists()


# --- uploaded templates in the shared store, and jobs that name their template -----------------


def use_shared_store(settings, folder: Path) -> None:
    backend = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    settings.STORAGES = settings.STORAGES | {
        "templates": backend | {"OPTIONS": {"location": folder}}
    }


def test_a_stored_template_is_fetched_into_each_data_folder_once_per_digest(settings, tmp_path):
    use_shared_store(settings, tmp_path / "shared")
    source = user_template(tmp_path / "src", "stored_median")
    digest = store_template(load_template(source))
    assert store_template(load_template(source)) == digest  # the same files: the same zip
    settings.DATA_DIR = tmp_path / "worker"
    cache = tmp_path / "worker" / "cache" / "templates"
    with ThreadPoolExecutor(4) as pool:  # processes fetching at once share one whole copy
        roots = set(pool.map(lambda _: fetch("stored_median", digest), range(8)))
    assert roots == {cache / digest} and [p.name for p in cache.iterdir()] == [digest]

    edit_manifest(source, lambda m: m.update(title="Changed"))
    changed = store_template(load_template(source))
    assert changed != digest
    assert stored_template("stored_median", changed).title == "Changed"  # fetched anew
    assert stored_template("stored_median", digest).title != "Changed"
    assert sorted(p.name for p in cache.iterdir()) == sorted([digest, changed])


def test_a_corrupt_stored_template_is_a_library_error_and_not_loaded(settings, tmp_path):
    use_shared_store(settings, tmp_path / "shared")
    settings.DATA_DIR = tmp_path / "data"
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / f"broken.{'0' * 64}.zip").write_bytes(b"PK\x03\x04 not this")
    library = TaskTemplateLibrary.load()
    assert "broken" not in {t.name for t in library}
    [error] = library.errors
    assert f"broken.{'0' * 64}.zip is corrupt" in str(error)
    assert not (tmp_path / "data" / "cache" / "templates" / ("0" * 64)).exists()


@pytest.mark.django_db(transaction=True)
def test_a_job_of_a_stored_template_runs_from_the_workers_own_copy(
    settings, tmp_path, django_capture_on_commit_callbacks
):
    use_shared_store(settings, tmp_path / "shared")
    settings.DATA_DIR = tmp_path / "web"
    digest = store_template(load_template(user_template(tmp_path / "src", "stored_median")))
    template = stored_template("stored_median", digest)
    spec = template.job_spec(variation={})
    assert spec.template == TemplateRef(name="stored_median", digest=digest)
    assert str(tmp_path) not in spec.model_dump_json()

    settings.DATA_DIR = tmp_path / "worker"
    job = run_template(template, django_capture_on_commit_callbacks, variation={})
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.execution.success is True
    assert (tmp_path / "worker" / "cache" / "templates" / digest / "debugging").is_dir()


@pytest.mark.django_db(transaction=True)
def test_a_job_stored_with_absolute_paths_before_references_still_runs(
    django_capture_on_commit_callbacks,
):
    template = LIBRARY.get("fix_failing_median")
    spec = resolve_spec(template.job_spec(variation={})).model_copy(update={"template": None})
    assert spec.workspace == str(template.workspace_dir)
    task = template.task_definition().get_or_create_task()
    with django_capture_on_commit_callbacks(execute=False):
        queued = create_job(task, spec)
    job = run_job(queued.pk)
    assert job is not None and job.execution is not None
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.execution.success is True


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_template_this_machine_lacks_fails_naming_it(
    django_capture_on_commit_callbacks,
):
    spec = LIBRARY.get("fix_failing_median").job_spec(variation={})
    spec = spec.model_copy(update={"template": TemplateRef(name="only_on_the_web")})
    task = LIBRARY.get("fix_failing_median").task_definition().get_or_create_task()
    with django_capture_on_commit_callbacks(execute=False):
        queued = create_job(task, spec)
    job = run_job(queued.pk)
    assert job is not None and job.status == JobStatus.FAILED
    assert "no TRAININGDASH_TEMPLATE_DIRS template named 'only_on_the_web'" in job.error
    assert not TrainingExample.objects.filter(execution=job.execution).exists()


def test_the_authoring_helper_drafts_edits_that_rebuild_each_solution():
    for template in BUILTIN:
        files = {
            p.relative_to(template.workspace_dir).as_posix(): p.read_text()
            for p in template.workspace_dir.rglob("*")
            if p.is_file()
        }
        for step in edit_steps(template.workspace_dir, template.solution_dir):
            path, given = step["input"]["file_path"], step["input"]
            if step["tool"] == "Write":
                files[path] = given["content"]
            else:
                assert files[path].count(given["old_string"]) == 1, (template.name, path)
                files[path] = files[path].replace(given["old_string"], given["new_string"])
        for solved in template.solution_dir.rglob("*"):
            if solved.is_file():
                rel = solved.relative_to(template.solution_dir).as_posix()
                assert files[rel] == solved.read_text(), (template.name, rel)
