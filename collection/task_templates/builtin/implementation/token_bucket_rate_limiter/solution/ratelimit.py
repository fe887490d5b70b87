"""Rate limiting for the public API."""

import time


class TokenBucket:
    """Allows bursts of up to `capacity` requests, refilled at `rate` tokens per second.

    The bucket starts full. `clock` returns the time in seconds (time.monotonic by
    default); tests pass a fake clock.
    """

    def __init__(self, rate, capacity, clock=time.monotonic):
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self._tokens = float(capacity)
        self._updated = clock()

    def _refill(self):
        now = self.clock()
        elapsed = max(0.0, now - self._updated)  # a clock going back adds nothing
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        self._updated = max(self._updated, now)

    def _check(self, cost):
        if cost > self.capacity:
            raise ValueError(f"cost {cost} exceeds the capacity {self.capacity}")

    def allow(self, cost=1):
        """Take `cost` tokens and return True, or return False and take nothing.

        A cost larger than the capacity can never be met: ValueError.
        """
        self._check(cost)
        self._refill()
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True

    def wait_time(self, cost=1):
        """Seconds until `cost` tokens are available (0.0 if they are now)."""
        self._check(cost)
        self._refill()
        return max(0.0, (cost - self._tokens) / self.rate)


class RateLimiter:
    """One TokenBucket per key (for example per API client)."""

    def __init__(self, rate, capacity, clock=time.monotonic):
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self._buckets = {}

    def allow(self, key, cost=1):
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.capacity, self.clock)
        return bucket.allow(cost)
