"""What the writer learns from a session's payloads as they pass, stored or already stored.

Usage is tallied once per model response (`message.id`): a response split over several
payloads counts once, with the largest value seen for each field (later lines of a response
carry the more complete usage). Totals include cache creation and cache reads.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collection.importers.base import Entry
from collection.importers.pricing import estimate_cost
from collection.models import TOKEN_FIELDS
from collection.sessions.task_inference import first_prompt

# Not a total of its own: the part of cache creation billed at the 1-hour rate.
ONE_HOUR = "cache_creation_1h_input_tokens"
OUTCOME_LENGTH = 10_000


@dataclass
class Response:
    model: str
    agent: str
    usage: dict[str, int] = field(default_factory=dict)
    cost: float | None = None  # as the transcript states it (older Claude Code: costUSD)


@dataclass
class Cost:
    usd: float
    estimated: bool
    basis: str  # transcript, price_table, mixed or unknown
    unpriced_models: list[str]


class SessionTracker:
    def __init__(self) -> None:
        self.responses: dict[str, Response] = {}
        self.first_at: datetime | None = None
        self.last_at: datetime | None = None
        self.tool_uses: set[str] = set()
        self.tool_results: set[str] = set()
        self.result: dict[str, Any] | None = None
        self.last_text = ""
        self.prompt = ""

    def see(self, entry: Entry) -> None:
        payload = entry.payload
        self._see_time(payload.get("timestamp"))
        kind = payload.get("type")
        message = payload.get("message")
        if kind == "result":
            self.result = payload
        if not isinstance(message, dict):
            return
        if kind == "assistant":
            self._see_response(entry, message)
        elif kind == "user":
            self.prompt = self.prompt or first_prompt(payload)
            self.tool_results.update(_block_ids(message, "tool_result", "tool_use_id"))

    @property
    def pending_tool_calls(self) -> set[str]:
        return self.tool_uses - self.tool_results

    def _see_time(self, value: Any) -> None:
        if not isinstance(value, str):
            return
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return
        if moment.tzinfo is None:
            return  # naive times are re-read by the importer that knows their zone
        self.first_at = min(self.first_at or moment, moment)
        self.last_at = max(self.last_at or moment, moment)

    def _see_response(self, entry: Entry, message: dict[str, Any]) -> None:
        self.tool_uses.update(_block_ids(message, "tool_use", "id"))
        agent = "subagents" if entry.payload.get("parent_tool_use_id") or entry.agent else "main"
        if agent == "main":
            texts = [b.get("text", "") for b in _blocks(message) if b.get("type") == "text"]
            self.last_text = "\n".join(t for t in texts if t).strip() or self.last_text
        rid = str(message.get("id") or entry.uuid)
        response = self.responses.setdefault(rid, Response(str(message.get("model") or ""), agent))
        for name, value in _usage(message.get("usage")).items():
            response.usage[name] = max(response.usage.get(name, 0), value)
        cost = entry.payload.get("costUSD")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            response.cost = max(response.cost or 0.0, float(cost))

    # --- totals ----------------------------------------------------------------------------

    def totals(self, agent: str | None = None) -> dict[str, int]:
        sums = dict.fromkeys(TOKEN_FIELDS, 0)
        for response in self.responses.values():
            if agent is None or response.agent == agent:
                for name in TOKEN_FIELDS:
                    sums[name] += response.usage.get(name, 0)
        return sums

    def usage_summary(self) -> dict[str, Any]:
        by_model: dict[str, dict[str, int]] = {}
        for response in self.responses.values():
            model = by_model.setdefault(response.model or "unknown", dict.fromkeys(TOKEN_FIELDS, 0))
            for name in TOKEN_FIELDS:
                model[name] += response.usage.get(name, 0)
        return self.totals() | {
            "responses": len(self.responses),
            "by_agent": {"main": self.totals("main"), "subagents": self.totals("subagents")},
            "by_model": by_model,
        }

    def main_turns(self) -> int:
        return sum(1 for r in self.responses.values() if r.agent == "main")

    def main_model(self) -> str:
        models = Counter(
            r.model for r in self.responses.values() if r.model and not r.model.startswith("<")
        )
        mains = Counter(
            r.model
            for r in self.responses.values()
            if r.agent == "main" and r.model and not r.model.startswith("<")
        )
        best = (mains or models).most_common(1)
        return best[0][0] if best else ""

    def cost(self) -> Cost:
        usd, stated, estimated, unpriced = 0.0, 0, 0, set()
        for response in self.responses.values():
            if response.cost is not None:
                usd, stated = usd + response.cost, stated + 1
                continue
            if not any(response.usage.get(name) for name in TOKEN_FIELDS):
                continue
            guess = estimate_cost(response.model, response.usage)
            if guess is None:
                unpriced.add(response.model or "unknown")
            else:
                usd, estimated = usd + guess, estimated + 1
        basis = _basis(stated, estimated, bool(unpriced))
        return Cost(usd, basis != "transcript", basis, sorted(unpriced))

    def outcome_text(self) -> str:
        return self.last_text[:OUTCOME_LENGTH]


def _basis(stated: int, estimated: int, unpriced: bool) -> str:
    if stated and not (estimated or unpriced):
        return "transcript"
    if estimated and not (stated or unpriced):
        return "price_table"
    if stated or estimated:
        return "mixed"
    return "unknown"


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _block_ids(message: dict[str, Any], kind: str, key: str) -> list[str]:
    return [str(b[key]) for b in _blocks(message) if b.get("type") == kind and b.get(key)]


def _usage(raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        return {}
    usage = {name: raw[name] for name in TOKEN_FIELDS if _is_count(raw.get(name))}
    creation = raw.get("cache_creation")
    if isinstance(creation, dict) and _is_count(creation.get("ephemeral_1h_input_tokens")):
        usage[ONE_HOUR] = creation["ephemeral_1h_input_tokens"]
    return usage


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
