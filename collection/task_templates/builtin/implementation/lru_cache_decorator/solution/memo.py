"""A least-recently-used memoising decorator (without functools.lru_cache)."""

import functools
import threading
from collections import OrderedDict, namedtuple

CacheInfo = namedtuple("CacheInfo", "hits misses maxsize currsize")
_KWARGS = object()  # separates positional from keyword arguments in a key


def lru_cache(maxsize=128):
    """Memoise a function, keeping the results of the `maxsize` most recent calls.

    The wrapper has cache_info() -> CacheInfo and cache_clear(). Positional and
    keyword arguments are part of the key (f(1, b=2) and f(1, 2) may be cached
    separately); unhashable arguments raise TypeError. It keeps the wrapped
    function's name and docstring, and is safe to call from several threads.
    """

    def decorator(fn):
        results = OrderedDict()
        lock = threading.RLock()
        stats = {"hits": 0, "misses": 0}

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            key = args + (_KWARGS,) + tuple(sorted(kwargs.items())) if kwargs else args
            hash(key)  # unhashable arguments: TypeError before anything runs
            with lock:
                if key in results:
                    results.move_to_end(key)
                    stats["hits"] += 1
                    return results[key]
                stats["misses"] += 1
            value = fn(*args, **kwargs)  # outside the lock: slow calls don't serialise
            with lock:
                results[key] = value
                results.move_to_end(key)
                while len(results) > maxsize:
                    results.popitem(last=False)
            return value

        def cache_info():
            with lock:
                return CacheInfo(stats["hits"], stats["misses"], maxsize, len(results))

        def cache_clear():
            with lock:
                results.clear()
                stats.update(hits=0, misses=0)

        wrapper.cache_info = cache_info
        wrapper.cache_clear = cache_clear
        return wrapper

    return decorator
