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

    def allow(self, cost=1):
        """Take `cost` tokens and return True, or return False and take nothing.

        A cost larger than the capacity can never be met: ValueError.
        """
        raise NotImplementedError

    def wait_time(self, cost=1):
        """Seconds until `cost` tokens are available (0.0 if they are now)."""
        raise NotImplementedError


class RateLimiter:
    """One TokenBucket per key (for example per API client)."""

    def __init__(self, rate, capacity, clock=time.monotonic):
        self.rate = rate
        self.capacity = capacity
        self.clock = clock

    def allow(self, key, cost=1):
        raise NotImplementedError
