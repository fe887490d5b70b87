from __future__ import annotations

from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = "Exports"

    def ready(self) -> None:
        from exports.admin import add_example_actions

        # The admin has loaded every app's admin module by now (it is first in INSTALLED_APPS):
        # the example admin gets its export actions without collection knowing about exports.
        add_example_actions()
