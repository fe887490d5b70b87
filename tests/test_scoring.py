from __future__ import annotations

import pytest

from collection.models import TrainingExample
from collection.schema import ActionRecord, TaskDefinition, TaskExecution, ToolCallRecord
from collection.scoring import (
    DefaultQualityScorer,
    ScoringError,
    apply_score,
    earns_golden,
    is_golden,
    rescore,
    score,
)
from tests.factories import make_example, make_execution, make_task, make_tool_call

TASK = TaskDefinition(
    name="Fix failing test",
    category="debugging",
    difficulty="easy",
    required_tools=["Read", "Edit"],
)
OK_CALLS = [
    ToolCallRecord(name="Read", is_error=False),
    ToolCallRecord(name="Edit", is_error=False),
]


ANSWER = (
    "Fixed add() in calc.py: it subtracted its second argument instead of adding it. "
    "tests/test_math.py now passes (3 passed); no other module calls add(), so nothing else "
    "changes. I also added a test for negative numbers."
)


def run(**kw) -> TaskExecution:
    fields = {
        "task": TASK,
        "success": True,
        "num_turns": 4,
        "cost_usd": 0.01,
        "tool_calls": OK_CALLS,
    }
    return TaskExecution(**(fields | kw))


# The seed's table: success 40%, efficiency 30%, cost 20%, tool usage 10% (easy: 6 turns, $0.10).
# Rows that differ from the seed: "no-tools" is now a trivial session (no tool, no answer),
# capped; efficiency now falls linearly from the turn budget to 0 at 1.5 times it ("slow",
# "a-little-slow", "everything-wrong").
@pytest.mark.parametrize(
    ("execution", "expected"),
    [
        (run(), 1.0),
        (run(success=False), 0.6),
        (run(num_turns=12), 0.4 + 0.3 * 0.0 + 0.2 + 0.1),
        (run(num_turns=7), 0.4 + 0.3 * 0.6667 + 0.2 + 0.1),
        (run(cost_usd=0.40), 0.4 + 0.3 + 0.2 * 0.25 + 0.1),
        (run(tool_calls=[*OK_CALLS, *[ToolCallRecord(name="Bash", is_error=True)] * 2]), 0.975),
        (run(tool_calls=[ToolCallRecord(name="Read", is_error=False)]), 0.4 + 0.3 + 0.2 + 0.075),
        (run(tool_calls=[]), 0.5),  # the seed said 0.9; no tools and no answer: capped
        (run(success=False, num_turns=60, cost_usd=1.0, tool_calls=[]), 0.0 + 0.02),
    ],
    ids=[
        "perfect",
        "failed",
        "slow",
        "a-little-slow",
        "expensive",
        "tool-errors",
        "missing-tool",
        "no-tools",
        "everything-wrong",
    ],
)
def test_default_scorer_weighs_success_efficiency_cost_and_tools(execution, expected):
    assert score(execution) == pytest.approx(expected, abs=1e-4)


def test_components_are_reported_separately():
    parts = DefaultQualityScorer().components(run(num_turns=7))
    assert parts == {"success": 1.0, "efficiency": 0.6667, "cost": 1.0, "tool_usage": 1.0}


def test_golden_starts_at_the_threshold(settings):
    assert is_golden(0.8) and not is_golden(0.7999)
    settings.TRAININGDASH_SCORING = settings.TRAININGDASH_SCORING | {"golden_threshold": 0.9}
    assert not is_golden(0.85)


def seed_custom_scorer(execution):
    # Verbatim from the seed document.
    score = 0.0
    if execution.success:
        score += 0.5
    if len(execution.actions) < 10:
        score += 0.3
    if execution.cost_usd < 0.05:
        score += 0.2
    return min(score, 1.0)


def test_the_seeds_custom_scorer_runs_unchanged():
    assert score(run(), seed_custom_scorer) == 1.0
    assert score(run(success=False, cost_usd=0.1), seed_custom_scorer) == 0.3


def test_a_scorer_can_be_named_by_dotted_path(settings):
    assert score(run(success=False), "tests.test_scoring.seed_custom_scorer") == 0.5
    settings.TRAININGDASH_QUALITY_SCORER = "tests.test_scoring.seed_custom_scorer"
    assert score(run(success=False)) == 0.5


def test_a_bad_scorer_is_named_in_the_error():
    with pytest.raises(ScoringError, match="no.such.scorer"):
        score(run(), "no.such.scorer")
    with pytest.raises(ScoringError, match="outside 0..1"):
        score(run(), lambda e: 1.5)
    with pytest.raises(ScoringError, match="not a number"):
        score(run(), lambda e: "high")


@pytest.mark.django_db
def test_apply_score_sets_score_and_golden_from_the_stored_execution():
    task = make_task(required_tools=["Read"])
    execution = make_execution(task, num_turns=3, cost_usd=0.01)
    make_tool_call(execution, 1, name="Read")
    example = apply_score(make_example(execution))
    example.refresh_from_db()
    assert (example.quality_score, example.is_golden) == (1.0, True)


@pytest.mark.django_db
def test_rescore_changes_all_or_nothing():
    examples = [make_example(make_execution(success=ok)) for ok in (True, False)]
    assert rescore(TrainingExample.objects.all(), seed_custom_scorer) == 2
    assert sorted(TrainingExample.objects.values_list("quality_score", flat=True)) == [0.5, 1.0]

    def fails_on_failures(execution):
        if not execution.success:
            raise RuntimeError("boom")
        return 0.1

    with pytest.raises(RuntimeError):
        rescore(TrainingExample.objects.order_by("-execution__success"), fails_on_failures)
    assert sorted(TrainingExample.objects.values_list("quality_score", flat=True)) == [0.5, 1.0]
    assert len(examples) == 2


@pytest.mark.django_db
def test_rescoring_keeps_a_reviewers_golden_ruling(reviewer):
    from collection.review import review_example

    example = make_example(make_execution(success=False))
    review_example(example, reviewer, is_golden=True, validated=True, validator_notes="", tags=[])
    apply_score(example)
    example.refresh_from_db()
    assert example.is_golden and example.quality_score < 0.8


@pytest.mark.django_db
def test_the_rescore_command_uses_the_named_scorer_and_refuses_a_bad_one():
    from io import StringIO

    from django.core.management import CommandError, call_command

    make_example(make_execution(success=False))
    out = StringIO()
    call_command("rescore", scorer="tests.test_scoring.seed_custom_scorer", stdout=out)
    assert "rescored 1 examples" in out.getvalue()
    assert TrainingExample.objects.get().quality_score == 0.5
    with pytest.raises(CommandError, match="nope.scorer"):
        call_command("rescore", scorer="nope.scorer")
    assert TrainingExample.objects.get().quality_score == 0.5


@pytest.mark.django_db
def test_apply_score_on_a_stale_copy_keeps_a_ruling_made_since_it_was_read(reviewer):
    from collection.review import review_example

    # Scores 0.9 (no tools used, but a real answer): golden, unless a reviewer says not.
    stale = make_example(make_execution(outcome=ANSWER))
    fresh = TrainingExample.objects.get(pk=stale.pk)
    review_example(fresh, reviewer, is_golden=False, validated=True, validator_notes="", tags=[])
    scored = apply_score(stale)
    assert (scored.quality_score, scored.is_golden, scored.reviewer) == (0.9, False, reviewer)
    assert not TrainingExample.objects.get(pk=stale.pk).is_golden


# --- telling a hard verified fix from a trivial or unverified session ---------------------------

HARD = TaskDefinition(
    name="Fix a race in the job lease",
    category="debugging",
    difficulty="hard",
    required_tools=["Read", "Edit", "Bash"],
)
QUESTION = TaskDefinition(name="What is 2+2?", category="imported", difficulty="medium")


@pytest.mark.parametrize(
    ("execution", "expected"),
    [
        (
            run(
                task=HARD,
                num_turns=10,
                cost_usd=0.42,
                outcome=ANSWER,
                tool_calls=[*OK_CALLS, ToolCallRecord(name="Bash", is_error=False)],
            ),
            1.0,
        ),
        (run(success=None), 0.6),
        (run(task=QUESTION, num_turns=1, cost_usd=0.001, outcome="4", tool_calls=[]), 0.5),
        (run(task=QUESTION, num_turns=1, cost_usd=0.001, outcome=ANSWER, tool_calls=[]), 1.0),
        (run(task=QUESTION, outcome="4", tool_calls=[], success=None), 0.5),
        (
            run(
                task=QUESTION,
                outcome="4",
                tool_calls=[],
                actions=[
                    ActionRecord(
                        agent_id="dev",
                        agent_role="specialist",
                        action_type="tool_use",
                        tool_name="Write",
                    )
                ],
            ),
            1.0,
        ),
    ],
    ids=[
        "verified-hard-fix",
        "unknown-success",
        "trivial-answer",
        "no-tools-but-a-real-answer",
        "trivial-and-unknown",
        "a-tool-used-by-a-tracked-agent",
    ],
)
def test_only_verified_success_earns_its_share_and_a_trivial_session_is_capped(execution, expected):
    assert score(execution) == pytest.approx(expected, abs=1e-4)


def test_the_test_answer_is_long_enough_not_to_be_trivial():
    assert len(ANSWER.strip()) >= 200


def test_the_trivial_cap_and_length_come_from_settings(settings):
    settings.TRAININGDASH_SCORING = settings.TRAININGDASH_SCORING | {
        "trivial_answer_chars": 2,
        "trivial_cap": 0.3,
    }
    assert score(run(task=QUESTION, outcome="4", tool_calls=[])) == 0.3
    assert score(run(task=QUESTION, outcome="42", tool_calls=[])) == 1.0


@pytest.mark.parametrize(
    ("quality", "success", "golden"),
    [
        (1.0, True, True),
        (0.8, True, True),
        (0.7999, True, False),
        (1.0, None, False),
        (1.0, False, False),
    ],
)
def test_golden_by_score_needs_a_verified_success(quality, success, golden):
    assert earns_golden(quality, success) is golden


def always_perfect(execution):
    return 1.0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("success", "golden"),
    [(True, True), (None, False), (False, False)],
    ids=["verified", "unknown", "failed"],
)
def test_apply_score_makes_only_a_verified_success_golden_whatever_the_scorer(success, golden):
    example = apply_score(make_example(make_execution(success=success)), always_perfect)
    assert (example.quality_score, example.is_golden) == (1.0, golden)


@pytest.mark.django_db
def test_an_imported_session_of_unknown_success_is_not_golden():
    task = make_task(category="imported", difficulty="medium", required_tools=[])
    execution = make_execution(task, source="imported", success=None, outcome=ANSWER)
    example = apply_score(make_example(execution))
    assert (example.quality_score, example.is_golden) == (0.6, False)


@pytest.mark.django_db
def test_a_reviewers_golden_ruling_on_an_unverified_session_survives_a_rescore(reviewer):
    from collection.review import review_example

    example = make_example(make_execution(success=None, outcome="4"))
    review_example(example, reviewer, is_golden=True, validated=True, validator_notes="", tags=[])
    assert rescore(TrainingExample.objects.all()) == 1
    example.refresh_from_db()
    assert (example.quality_score, example.is_golden, example.reviewer) == (0.5, True, reviewer)
