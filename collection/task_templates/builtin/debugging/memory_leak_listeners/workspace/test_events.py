import gc
import unittest
import weakref

from events import EventBus
from widgets import Widget


class EventBusTest(unittest.TestCase):
    def test_live_widgets_get_events(self):
        bus = EventBus()
        widget = Widget(bus, "total")
        bus.publish("model-changed", {"total": 3})
        self.assertEqual(widget.renders, 1)

    def test_plain_functions_stay_subscribed(self):
        bus = EventBus()
        seen = []
        bus.subscribe("saved", lambda payload: seen.append(payload))
        gc.collect()
        bus.publish("saved", 1)
        self.assertEqual(seen, [1])

    def test_closed_widgets_are_freed(self):
        bus = EventBus()
        refs = [weakref.ref(Widget(bus, f"w{i}")) for i in range(100)]
        gc.collect()
        self.assertEqual(sum(ref() is not None for ref in refs), 0)

    def test_dead_handlers_are_dropped(self):
        bus = EventBus()
        for i in range(100):
            Widget(bus, f"w{i}")
        gc.collect()
        bus.publish("model-changed", {})
        self.assertEqual(bus.handler_count("model-changed"), 0)


if __name__ == "__main__":
    unittest.main()
