"""A cache whose entries expire."""

import time


class TTLCache:
    """Maps keys to values for `ttl` seconds after they were set.

    `clock` returns the current time in seconds (time.monotonic by default); tests pass
    a fake clock. An entry set at time t is expired from t + ttl on.
    """

    def __init__(self, ttl, clock=time.monotonic):
        self.ttl = ttl
        self.clock = clock

    def set(self, key, value):
        raise NotImplementedError

    def get(self, key, default=None):
        """The value, or `default` when missing or expired (expired entries are dropped)."""
        raise NotImplementedError

    def __len__(self):
        """The number of entries that have not expired."""
        raise NotImplementedError
