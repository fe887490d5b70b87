"""A tiny publish/subscribe bus for the UI."""

import weakref


class EventBus:
    def __init__(self):
        self._handlers = {}

    def subscribe(self, topic, handler):
        """Call `handler(payload)` for each event on `topic`.

        A bound method is only called while its object is alive: subscribing must not
        keep the object alive. Plain functions stay subscribed.
        """
        bound = hasattr(handler, "__self__")
        ref = weakref.WeakMethod(handler) if bound else _strong(handler)
        self._handlers.setdefault(topic, []).append(ref)

    def publish(self, topic, payload):
        live = [(ref, ref()) for ref in self._handlers.get(topic, [])]
        live = [(ref, handler) for ref, handler in live if handler is not None]
        self._handlers[topic] = [ref for ref, _ in live]
        for _, handler in live:
            handler(payload)

    def handler_count(self, topic):
        return len(self._handlers.get(topic, []))


def _strong(handler):
    """A reference that always answers `handler`, shaped like a weak reference."""
    return lambda: handler
