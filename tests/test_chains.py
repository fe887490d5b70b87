from __future__ import annotations

import pytest

from collection.sessions.chains import ChainError, ChainStep, ConversationChain, compose_prompt


def step(name: str, *deps: str) -> ChainStep:
    return ChainStep(name=name, prompt=f"do {name}", depends_on=list(deps))


def test_steps_run_in_dependency_order_keeping_declaration_order_otherwise():
    chain = ConversationChain(
        name="c",
        steps=[step("verify", "fix"), step("identify"), step("fix", "identify"), step("notes")],
    )
    assert [s.name for s in chain.ordered_steps()] == ["identify", "fix", "verify", "notes"]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([step("a", "b"), step("b", "a")], "step 'a' is part of a dependency cycle"),
        ([step("a"), step("b", "ghost")], "step 'b' depends on unknown step 'ghost'"),
        ([step("a"), step("a")], "step 'a' is defined twice"),
        ([step("a", "a")], "step 'a' is part of a dependency cycle"),
    ],
    ids=["cycle", "missing", "duplicate", "self"],
)
def test_a_malformed_chain_is_refused_naming_the_step(steps, message):
    with pytest.raises((ChainError, ValueError), match=message):
        ConversationChain(name="broken", steps=steps)


def test_a_later_prompt_carries_the_results_it_depends_on():
    prompt = compose_prompt(
        "Debug the failing test", step("fix", "identify"), {"identify": "add() subtracts"}
    )
    assert prompt.startswith("Debug the failing test")
    assert "Current step (fix): do fix" in prompt
    assert "[identify] add() subtracts" in prompt
