"""A tiny publish/subscribe bus for the UI."""


class EventBus:
    def __init__(self):
        self._handlers = {}

    def subscribe(self, topic, handler):
        """Call `handler(payload)` for each event on `topic`.

        A bound method is only called while its object is alive: subscribing must not
        keep the object alive. Plain functions stay subscribed.
        """
        self._handlers.setdefault(topic, []).append(handler)

    def publish(self, topic, payload):
        for handler in list(self._handlers.get(topic, [])):
            handler(payload)

    def handler_count(self, topic):
        return len(self._handlers.get(topic, []))
