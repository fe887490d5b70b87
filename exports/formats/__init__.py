"""Every export format, by name: one registry.

    from exports.formats import FORMATS, get_format
    fmt = get_format("jsonl")

Each module defines one `Format` subclass; adding a format means adding its module below.
"""

from __future__ import annotations

from importlib import import_module

from exports.formats.base import ExportError, Format

# name -> the module defining it (its one `Format` subclass whose `name` is that name), in the
# order pages list them.
_MODULES = {
    "jsonl": "exports.formats.openai_chat",
    "conversations": "exports.formats.sharegpt",
    "instruct": "exports.formats.alpaca",
    "messages": "exports.formats.hf_messages",
    "preference": "exports.formats.preference",
    "stepwise": "exports.formats.stepwise",
    "adp": "exports.formats.adp",
    "atif": "exports.formats.atif",
    "evaluation": "exports.formats.evaluation",
}


def _load(name: str, module_name: str) -> Format:
    module = import_module(module_name)
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, Format) and value.name == name:
            return value()
    raise ImportError(f"{module_name} defines no Format named {name!r}")


FORMATS: dict[str, Format] = {name: _load(name, module) for name, module in _MODULES.items()}


def get_format(name: str) -> Format:
    """The format called `name`, or an ExportError listing the known ones."""
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(FORMATS)
        raise ExportError(f"unknown export format {name!r}; choose one of {known}") from None


__all__ = ["FORMATS", "ExportError", "Format", "get_format"]
