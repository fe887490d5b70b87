"""Estimating a response's cost from its usage when the transcript doesn't state one.

Prices are USD per million tokens (input, output, 5-minute cache write, cache read), from the
providers' public price lists. A 1-hour cache write costs twice the input price. Costs computed
here are marked `Execution.cost_estimated`.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Price(NamedTuple):
    input: float
    output: float
    cache_write: float
    cache_read: float


# Matched by longest prefix of the model name, so dated versions find their family.
PRICES: dict[str, Price] = {
    "claude-opus-4-6": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-5": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-1": Price(15.0, 75.0, 18.75, 1.50),
    "claude-opus-4": Price(15.0, 75.0, 18.75, 1.50),
    "claude-sonnet-4": Price(3.0, 15.0, 3.75, 0.30),
    "claude-3-7-sonnet": Price(3.0, 15.0, 3.75, 0.30),
    "claude-3-5-sonnet": Price(3.0, 15.0, 3.75, 0.30),
    "claude-haiku-4-5": Price(1.0, 5.0, 1.25, 0.10),
    "claude-3-5-haiku": Price(0.80, 4.0, 1.0, 0.08),
    "claude-3-haiku": Price(0.25, 1.25, 0.30, 0.03),
    "claude-3-opus": Price(15.0, 75.0, 18.75, 1.50),
    "gpt-4o-mini": Price(0.15, 0.60, 0.0, 0.075),
    "gpt-4o": Price(2.50, 10.0, 0.0, 1.25),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.0, 0.10),
    "gpt-4.1": Price(2.0, 8.0, 0.0, 0.50),
}


def price_for(model: str) -> Price | None:
    # Routers prefix the provider ("anthropic/claude-...", "litellm_proxy/gpt-4o").
    name = model.rsplit("/", 1)[-1].lower()
    matches = [prefix for prefix in PRICES if name.startswith(prefix)]
    return PRICES[max(matches, key=len)] if matches else None


def estimate_cost(model: str, usage: dict[str, Any]) -> float | None:
    """USD for one response's usage (Anthropic field names), or None for an unknown model."""
    price = price_for(model)
    if price is None:
        return None
    one_hour = _int(usage.get("cache_creation_1h_input_tokens"))
    five_minutes = max(_int(usage.get("cache_creation_input_tokens")) - one_hour, 0)
    micro_usd = (
        _int(usage.get("input_tokens")) * price.input
        + _int(usage.get("output_tokens")) * price.output
        + five_minutes * price.cache_write
        + one_hour * price.input * 2
        + _int(usage.get("cache_read_input_tokens")) * price.cache_read
    )
    return micro_usd / 1_000_000


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
