"""The calibration: how often planned sessions pass by difficulty, and each failure mode
played through the real CLI is a failure by the template's verifier (a success a success)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings

from collection.calibration import DEFAULT_PASS_RATE, Calibration, current
from collection.jobs.runner import create_job, run_job
from collection.models import Difficulty, JobStatus, TaskStatus
from collection.scripted_model.script import Script, parse_script, plan, session_salt
from collection.task_templates import TaskTemplate, TaskTemplateLibrary

pytestmark = pytest.mark.backend_independent

LIBRARY = TaskTemplateLibrary.load([])
SEEDS = range(200)
# 200 planned sessions per difficulty: the binomial sd of a pass rate is at most 3.5 points
# (p = 0.5), so 10 points is about three sd; a wrong rate table fails by far more.
TOLERANCE = 0.10


def planned_pass_rate(difficulty: str, calibration: Calibration | None = None) -> float:
    templates = LIBRARY.templates(difficulty=difficulty)
    outcomes = [
        templates[seed % len(templates)].planned_outcome(seed, calibration) for seed in SEEDS
    ]
    return outcomes.count("success") / len(outcomes)


@pytest.mark.parametrize("difficulty", list(Difficulty))
def test_the_planned_pass_rate_per_difficulty_lands_within_ten_points_of_the_calibration(
    difficulty,
):
    target = current().pass_rate[difficulty]
    assert target == DEFAULT_PASS_RATE[difficulty]
    assert abs(planned_pass_rate(difficulty) - target) <= TOLERANCE


def test_harder_templates_pass_less_often():
    rates = [planned_pass_rate(d) for d in Difficulty]
    assert rates == sorted(rates, reverse=True) and rates[0] - rates[-1] > 0.4


def test_settings_override_the_calibration(settings):
    settings.TRAININGDASH_CALIBRATION = {
        "pass_rate": {"easy": 0.0},
        "failure_modes": {"loop": 1.0},
    }
    calibration = current()
    assert calibration.pass_rate[Difficulty.HARD] == DEFAULT_PASS_RATE[Difficulty.HARD]
    template = LIBRARY.templates(difficulty="easy")[0]
    assert {template.planned_outcome(seed) for seed in range(20)} == {"loop"}
    with pytest.raises(ValueError, match="unknown failure modes"):
        current({"failure_modes": {"explode": 1.0}})


def test_the_same_seed_plans_the_same_session_and_seeds_differ():
    template = LIBRARY.get("jsonl_export")
    assert template.job_spec(seed=11) == template.job_spec(seed=11)
    outcomes = {template.planned_outcome(seed) for seed in range(60)}
    assert "success" in outcomes and len(outcomes) >= 4


def test_successful_plans_vary_in_length():
    template = LIBRARY.get("jsonl_export")
    scripts = {s: template.job_spec(seed=s, outcome="success").script for s in range(40)}
    lengths = {len(plan(parse_script(d), session_salt(s, d))) for s, d in scripts.items()}
    assert len(lengths) >= 3


# --- every planned edit failure is a failure by the verifier (offline, for every template) -----


def replay(script: Script, seed: str, work: Path) -> None:
    """Apply the edits a plan makes (sub-agents' too) to `work`, as the CLI would."""
    for step in plan(script, seed):
        if step.subagent is not None:
            replay(step.subagent, f"{seed}:{step.key}", work)
        elif step.tool in ("Edit", "Write") and step.kind != "error":
            apply_edit(work, dict(step.input))


def apply_edit(work: Path, tool_input: dict) -> None:
    target = work / tool_input["file_path"]
    if "content" in tool_input:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(tool_input["content"])
    elif target.is_file() and target.read_text().count(tool_input["old_string"]) == 1:
        target.write_text(
            target.read_text().replace(*map(tool_input.get, ("old_string", "new_string")))
        )


def verdict_of_plan(template: TaskTemplate, outcome: str, work: Path) -> bool:
    spec = template.job_spec(seed=1, variation={}, outcome=outcome)
    template.materialize(work)
    scripts = [spec.script] if spec.script else [s.extra["script"] for s in spec.chain.steps]
    for script in scripts:
        replay(parse_script(script), "1", work)
    return template.run_verifier(work).passed


def test_every_planned_wrong_or_partial_fix_fails_the_verifier_of_every_template(tmp_path):
    cases = [
        (t, mode)
        for t in LIBRARY
        for mode in ("wrong_fix", "partial")
        if mode in t.supported_outcomes
    ]
    assert len(cases) > len(LIBRARY)
    with ThreadPoolExecutor(8) as pool:
        passed = pool.map(lambda c: verdict_of_plan(*c, tmp_path / f"{c[0].name}-{c[1]}"), cases)
        wrongly_passing = [
            (t.name, mode) for (t, mode), ok in zip(cases, passed, strict=True) if ok
        ]
    assert wrongly_passing == []


# --- each failure mode through the real CLI ----------------------------------------------------

TEMPLATE = LIBRARY.get("jsonl_export")  # medium, two edits: every mode applies


def run(outcome: str, capture, seed: int = 3):
    spec = TEMPLATE.job_spec(seed=seed, outcome=outcome, variation={})
    if outcome == "budget":
        spec = spec.model_copy(update={"max_cost_usd": current().budget_usd})
    with capture(execute=False):
        job = create_job(TEMPLATE.task_definition().get_or_create_task(), spec)
    return run_job(job.pk)


def replayed_verdict(job, work: Path) -> bool:
    """The verifier on a fresh workspace with the session's successful edits laid over it
    (for sessions the CLI stopped, which the collector does not verify)."""
    TEMPLATE.materialize(work)
    sandbox = Path(settings.DATA_DIR) / "sandboxes" / f"job-{job.pk}-attempt-{job.attempts}"
    calls = job.execution.tool_calls.filter(name__in=("Edit", "Write"), is_error=False)
    for call in calls:
        tool_input = dict(call.input)
        tool_input["file_path"] = str(Path(tool_input["file_path"]).relative_to(sandbox / "work"))
        apply_edit(work, tool_input)
    return TEMPLATE.run_verifier(work).passed


def test_the_budget_mode_spec_carries_the_calibrated_cost_limit():
    seed = next(s for s in range(200) if TEMPLATE.planned_outcome(s) == "budget")
    assert TEMPLATE.job_spec(seed=seed).max_cost_usd == current().budget_usd
    assert TEMPLATE.job_spec(seed=seed, variation={}).max_cost_usd is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outcome", ["success", "wrong_fix", "partial", "give_up", "loop"])
def test_a_planned_outcome_that_completes_is_judged_by_the_verifier(
    outcome, django_capture_on_commit_callbacks
):
    job = run(outcome, django_capture_on_commit_callbacks)
    execution = job.execution
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert execution.status == TaskStatus.COMPLETED
    verdict = execution.performance_metrics["verifier"]
    assert execution.success is (outcome == "success")
    assert (verdict["exit_code"] == 0) is (outcome == "success")
    edits = execution.tool_calls.filter(name="Edit")
    if outcome == "wrong_fix":
        assert edits.filter(is_error=False).count() == 2
    if outcome == "partial":
        assert edits.count() == 1
    if outcome == "give_up":
        assert not edits.exists()
    if outcome == "loop":
        assert edits.filter(is_error=True).count() >= 3 and not edits.filter(is_error=False)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("outcome", "reason"), [("max_turns", "max_turns"), ("budget", "budget")])
def test_a_planned_outcome_the_cli_stops_fails_and_its_edits_fail_the_verifier(
    outcome, reason, django_capture_on_commit_callbacks, tmp_path
):
    job = run(outcome, django_capture_on_commit_callbacks)
    execution = job.execution
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert execution.status == TaskStatus.FAILED and execution.success is False
    assert reason in execution.error
    assert execution.tool_calls.count() >= 5  # it explored until stopped
    assert replayed_verdict(job, tmp_path / "work") is False
