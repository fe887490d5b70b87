"""What pages outside exports need to offer an export: `{% export_formats as formats %}`."""

from __future__ import annotations

from django import template

from exports.bundles import format_choices

register = template.Library()


@register.simple_tag
def export_formats() -> list[tuple[str, str]]:
    """(name, title) of every format a bundle can hold, from the one registry."""
    return format_choices()
