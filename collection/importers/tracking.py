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
class Folded:
    """Responses that will not be seen again, summed (`SessionTracker.state`): by model, agent
    and how their cost is known (stated, estimated, unpriced, or no usage at all)."""

    model: str
    agent: str
    basis: str
    usage: dict[str, int] = field(default_factory=dict)
    usd: float = 0.0
    count: int = 0

    def add(self, response: Response, usd: float) -> None:
        for name, value in response.usage.items():
            self.usage[name] = self.usage.get(name, 0) + value
        self.usd += usd
        self.count += 1


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
        self.folded: dict[tuple[str, str, str], Folded] = {}

    def state(self, open_responses: set[str]) -> dict[str, Any]:
        """What it knows, as JSON, for a read resumed later (`restore`). Seeing an entry again
        changes nothing, so a resumed read may replay what it had not finished; responses
        other than `open_responses` (the ones a resumed read may see again) are summed, and
        answered tool calls dropped, so the state grows with what is still open, not with
        the session (tool-use ids are not reused in the sessions that resume)."""
        for rid in [rid for rid in self.responses if rid not in open_responses]:
            self._fold(self.responses.pop(rid))
        return {
            "responses": {
                rid: [r.model, r.agent, r.usage, r.cost] for rid, r in self.responses.items()
            },
            "folded": [
                [f.model, f.agent, f.basis, f.usage, f.usd, f.count] for f in self.folded.values()
            ],
            "first_at": self.first_at.isoformat() if self.first_at else None,
            "last_at": self.last_at.isoformat() if self.last_at else None,
            "tool_uses": sorted(self.tool_uses - self.tool_results),
            "tool_results": sorted(self.tool_results - self.tool_uses),
            "result": self.result,
            "last_text": self.last_text,
            "prompt": self.prompt,
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> SessionTracker:
        tracker = cls()
        tracker.responses = {
            rid: Response(model, agent, dict(usage), cost)
            for rid, (model, agent, usage, cost) in state["responses"].items()
        }
        for model, agent, basis, usage, usd, count in state["folded"]:
            tracker.folded[(model, agent, basis)] = Folded(model, agent, basis, usage, usd, count)
        tracker.first_at = _moment(state["first_at"])
        tracker.last_at = _moment(state["last_at"])
        tracker.tool_uses, tracker.tool_results = (
            set(state["tool_uses"]),
            set(state["tool_results"]),
        )
        tracker.result, tracker.last_text = state["result"], state["last_text"]
        tracker.prompt = state["prompt"]
        return tracker

    def _fold(self, response: Response) -> None:
        basis, usd = _priced(response)
        key = (response.model, response.agent, basis)
        self.folded.setdefault(key, Folded(*key)).add(response, usd or 0.0)

    def _all(self) -> list[Folded]:
        """Every response, the folded ones by the group: what the totals are made of."""
        alone = []
        for response in self.responses.values():
            basis, usd = _priced(response)
            alone.append(Folded(response.model, response.agent, basis, response.usage, usd or 0, 1))
        return [*self.folded.values(), *alone]

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
        for group in self._all():
            if agent is None or group.agent == agent:
                for name in TOKEN_FIELDS:
                    sums[name] += group.usage.get(name, 0)
        return sums

    def usage_summary(self) -> dict[str, Any]:
        by_model: dict[str, dict[str, int]] = {}
        groups = self._all()
        for group in groups:
            model = by_model.setdefault(group.model or "unknown", dict.fromkeys(TOKEN_FIELDS, 0))
            for name in TOKEN_FIELDS:
                model[name] += group.usage.get(name, 0)
        return self.totals() | {
            "responses": sum(group.count for group in groups),
            "by_agent": {"main": self.totals("main"), "subagents": self.totals("subagents")},
            "by_model": by_model,
        }

    def main_turns(self) -> int:
        return sum(group.count for group in self._all() if group.agent == "main")

    def main_model(self) -> str:
        models: Counter[str] = Counter()
        mains: Counter[str] = Counter()
        for group in self._all():
            if group.model and not group.model.startswith("<"):
                models[group.model] += group.count
                if group.agent == "main":
                    mains[group.model] += group.count
        best = (mains or models).most_common(1)
        return best[0][0] if best else ""

    def cost(self) -> Cost:
        usd, stated, estimated, unpriced = 0.0, 0, 0, set()
        for group in self._all():
            if group.basis == "transcript":
                usd, stated = usd + group.usd, stated + group.count
            elif group.basis == "price_table":
                usd, estimated = usd + group.usd, estimated + group.count
            elif group.basis == "unknown":
                unpriced.add(group.model or "unknown")
        basis = _basis(stated, estimated, bool(unpriced))
        return Cost(usd, basis != "transcript", basis, sorted(unpriced))

    def outcome_text(self) -> str:
        return self.last_text[:OUTCOME_LENGTH]


def _priced(response: Response) -> tuple[str, float | None]:
    """How a response's cost is known (transcript, price_table, unknown, or none: no usage)
    and its USD."""
    if response.cost is not None:
        return "transcript", response.cost
    if not any(response.usage.get(name) for name in TOKEN_FIELDS):
        return "none", None
    guess = estimate_cost(response.model, response.usage)
    return ("unknown", None) if guess is None else ("price_table", guess)


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


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
