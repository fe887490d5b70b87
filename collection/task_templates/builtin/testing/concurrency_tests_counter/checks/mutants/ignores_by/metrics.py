"""Request counters shared by the server's handler threads."""

import threading


class Counter:
    """A counter that many threads increment; no increment is ever lost.

    Observers are called with each new value, in order (exporters use this; they may be
    slow).
    """

    def __init__(self):
        self._value = 0
        self._observers = []
        self._lock = threading.Lock()

    def subscribe(self, observer):
        self._observers.append(observer)

    def increment(self, by=1):
        with self._lock:
            value = self._value + 1
            for observer in self._observers:
                observer(value)
            self._value = value
        return value

    @property
    def value(self):
        return self._value
