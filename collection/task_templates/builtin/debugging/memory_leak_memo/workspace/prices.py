"""Price quotes, memoised so that repeated quotes are cheap."""

MAX_ENTRIES = 256  # the memo must never hold more quotes than this
_cache = {}


def quote(sku, quantity):
    """The price in cents of `quantity` items of `sku`."""
    key = (sku, quantity)
    if key not in _cache:
        _cache[key] = _compute(sku, quantity)
    return _cache[key]


def _compute(sku, quantity):
    base = sum(ord(c) for c in sku)
    discount = 10 if quantity >= 100 else 0
    return base * quantity * (100 - discount) // 100


def cache_size():
    return len(_cache)
