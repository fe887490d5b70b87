"""Price quotes, memoised so that repeated quotes are cheap."""

from collections import OrderedDict

MAX_ENTRIES = 256  # the memo must never hold more quotes than this
_cache = OrderedDict()


def quote(sku, quantity):
    """The price in cents of `quantity` items of `sku`."""
    key = (sku, quantity)
    if key in _cache:
        _cache.move_to_end(key)  # recently used: evict it last
        return _cache[key]
    price = _cache[key] = _compute(sku, quantity)
    if len(_cache) > MAX_ENTRIES:
        _cache.popitem(last=False)
    return price


def _compute(sku, quantity):
    base = sum(ord(c) for c in sku)
    discount = 10 if quantity >= 100 else 0
    return base * quantity * (100 - discount) // 100


def cache_size():
    return len(_cache)
