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
        self._entries = {}  # key -> (expires_at, value)

    def set(self, key, value):
        self._entries[key] = (self.clock() + self.ttl, value)

    def get(self, key, default=None):
        """The value, or `default` when missing or expired (expired entries are dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return default
        expires_at, value = entry
        if self.clock() >= expires_at:
            del self._entries[key]
            return default
        return value

    def __len__(self):
        """The number of entries that have not expired."""
        now = self.clock()
        self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
        return len(self._entries)
