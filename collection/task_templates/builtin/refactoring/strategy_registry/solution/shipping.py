"""Shipping costs in cents.

Each method is a strategy: a function from weight to base cost, registered by name.
Add a method with `@register("drone")` without touching shipping_cost().
"""

_STRATEGIES = {}


def register(method):
    """Register the decorated function `(weight_kg) -> cost` as shipping `method`."""

    def decorator(strategy):
        _STRATEGIES[method] = strategy
        return strategy

    return decorator


def available_methods():
    return sorted(_STRATEGIES)


@register("ground")
def _ground(weight_kg):
    return 500 + 120 * weight_kg


@register("air")
def _air(weight_kg):
    return 1500 + 300 * weight_kg


@register("sea")
def _sea(weight_kg):
    surcharge = 1000 if weight_kg < 10 else 0
    return 2000 + 40 * weight_kg + surcharge


def shipping_cost(weight_kg, method, express=False):
    try:
        strategy = _STRATEGIES[method]
    except KeyError:
        raise ValueError(f"unknown shipping method: {method}") from None
    cost = strategy(weight_kg)
    if express:
        cost = cost * 3 / 2
    return round(cost)
