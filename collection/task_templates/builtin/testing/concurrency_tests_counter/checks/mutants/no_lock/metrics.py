"""Request counters shared by the server's handler threads."""

import contextlib


class Counter:
    """A counter that many threads increment; no increment is ever lost.

    Observers are called with each new value, in order (exporters use this; they may be
    slow).
    """

    def __init__(self):
        self._value = 0
        self._observers = []
        self._lock = contextlib.nullcontext()

    def subscribe(self, observer):
        self._observers.append(observer)

    def increment(self, by=1):
        with self._lock:
            value = self._value + by
            for observer in self._observers:
                observer(value)
            self._value = value
        return value

    @property
    def value(self):
        return self._value
