"""Widgets re-render when the model they show changes."""


class Widget:
    def __init__(self, bus, name):
        self.name = name
        self.renders = 0
        bus.subscribe("model-changed", self.on_change)

    def on_change(self, payload):
        self.renders += 1
