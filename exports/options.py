"""What every export takes, whatever its format.

    options = ExportOptions(include_thinking=True, subagents="coordinator_only")

One validated model: the export page's form, the admin actions, `manage.py export` and the
seed's `TrainingDataExporter` all build one, and the bundle's manifest records it as JSON.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ExportOptions(BaseModel):
    """Options shared by every format.

    - include_thinking: export the model's thinking (formats without a field for it leave it out).
    - subagents: "separate" makes each sub-agent conversation its own record, linked to its
      coordinator by `parent_id`; "coordinator_only" exports the coordinator's side alone.
    - exclude_duplicates: leave out examples that duplicate an earlier one.
    - redact: replace secrets with typed placeholders before writing.
    - max_tokens: the validator's limit on a record's estimated token count.
    - seed: seeds everything random (splits), so the same data gives the same files.
    - golden_only: export golden examples only.
    - split_ratio: train / validation / test shares for formats that split.
    - reuse_examples: preference pairs may use an example more than once.
    """

    model_config = ConfigDict(extra="forbid")

    include_thinking: bool = False
    subagents: Literal["separate", "coordinator_only"] = "separate"
    exclude_duplicates: bool = True
    redact: bool = True
    max_tokens: int = Field(default=32768, gt=0)
    seed: int = 0
    golden_only: bool = False
    split_ratio: tuple[float, float, float] = (0.8, 0.1, 0.1)
    reuse_examples: bool = False

    @field_validator("split_ratio")
    @classmethod
    def _shares(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(share < 0 for share in value) or abs(sum(value) - 1.0) > 1e-6:
            raise ValueError("split_ratio needs three shares >= 0 that add up to 1")
        return value
