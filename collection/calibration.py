"""How often generated sessions pass, by difficulty, and how their failures split among modes.

    calibration = current()                    # defaults, overridden by settings
    calibration.choose("medium", "fix_failing_median:7", supported)   # -> "success", "loop", ...

A template's `job_spec(seed=...)` asks `choose` for the session's outcome; the scripted model
then plays that outcome as real tool calls and the template's verifier decides success. The
plan is a pure function of (template, seed, calibration): the same seed replays exactly.

Defaults, from published agent results (rounded; a scripted batch should look like a real one,
not like the best agent's best day):

- easy 0.88: top agents resolve about 84-86% of SWE-bench Verified's "< 15 min" issues
  (J. Ganhotra, "How difficult are SWE-Bench-Verified tasks really?", April 2025, using the
  difficulty annotations OpenAI published with SWE-bench Verified, August 2024).
- medium 0.68: the same leaderboard's overall resolve rate was 65-73% in mid-2025, and nine
  in ten Verified issues are "< 1 hour" (OpenAI's annotations), so most of it is easy+medium.
- hard 0.42, expert 0.22: resolve rates fall steeply for "1-4 hours" and "> 4 hours" issues;
  on the harder full SWE-bench, SWE-agent resolved 12.5% (Yang et al., "SWE-agent:
  Agent-Computer Interfaces Enable Automated Software Engineering", NeurIPS 2024).

Failure split: SWE-agent's analysis of failed trajectories (Yang et al. 2024, section 5) found
incorrect or incomplete fixes the most common failure, then getting stuck retrying failed edits,
with giving up early and running out of turns or budget behind; the weights follow that order.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, model_validator

from collection.models import Difficulty
from collection.scripted_model.script import FAILURE_MODES

DEFAULT_PASS_RATE = {
    Difficulty.EASY: 0.88,
    Difficulty.MEDIUM: 0.68,
    Difficulty.HARD: 0.42,
    Difficulty.EXPERT: 0.22,
}
DEFAULT_FAILURE_MODES = {
    "wrong_fix": 0.35,
    "partial": 0.15,
    "loop": 0.18,
    "give_up": 0.12,
    "max_turns": 0.12,
    "budget": 0.08,
}


class Calibration(BaseModel):
    """Target pass rates per difficulty and relative weights of the failure modes.

    `budget_usd` is the cost limit a `budget` session is given (the CLI stops it there).
    """

    model_config = ConfigDict(extra="forbid")

    pass_rate: dict[Difficulty, float] = Field(default_factory=lambda: dict(DEFAULT_PASS_RATE))
    failure_modes: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_FAILURE_MODES))
    budget_usd: float = Field(default=0.12, gt=0)

    @model_validator(mode="after")
    def _check(self) -> Calibration:
        if unknown := set(self.failure_modes) - set(FAILURE_MODES):
            raise ValueError(f"unknown failure modes {sorted(unknown)}; known: {FAILURE_MODES}")
        if any(not 0 <= r <= 1 for r in self.pass_rate.values()):
            raise ValueError("pass rates are between 0 and 1")
        if any(w < 0 for w in self.failure_modes.values()) or not any(self.failure_modes.values()):
            raise ValueError("failure mode weights are >= 0 and not all 0")
        self.pass_rate = DEFAULT_PASS_RATE | self.pass_rate
        return self

    def choose(self, difficulty: str, key: str, supported: Iterable[str]) -> str:
        """The outcome of the session named `key` ("template:seed"): "success" with the
        difficulty's pass rate, else a failure mode the script supports, by weight."""
        rng = random.Random(f"{key}:outcome")
        if rng.random() < self.pass_rate[Difficulty(difficulty)]:
            return "success"
        modes = [m for m in FAILURE_MODES if m in set(supported) and self.failure_modes.get(m)]
        if not modes:
            return "success"
        return rng.choices(modes, weights=[self.failure_modes[m] for m in modes])[0]


def current(overrides: dict[str, Any] | None = None) -> Calibration:
    """The defaults with `overrides` (else settings.TRAININGDASH_CALIBRATION) laid over them."""
    data = getattr(settings, "TRAININGDASH_CALIBRATION", {}) if overrides is None else overrides
    return Calibration.model_validate(data or {})
