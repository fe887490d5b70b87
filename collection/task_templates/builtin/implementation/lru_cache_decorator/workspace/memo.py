"""A least-recently-used memoising decorator (without functools.lru_cache)."""

from collections import namedtuple

CacheInfo = namedtuple("CacheInfo", "hits misses maxsize currsize")


def lru_cache(maxsize=128):
    """Memoise a function, keeping the results of the `maxsize` most recent calls.

    The wrapper has cache_info() -> CacheInfo and cache_clear(). Positional and
    keyword arguments are part of the key (f(1, b=2) and f(1, 2) may be cached
    separately); unhashable arguments raise TypeError. It keeps the wrapped
    function's name and docstring, and is safe to call from several threads.
    """
    raise NotImplementedError
