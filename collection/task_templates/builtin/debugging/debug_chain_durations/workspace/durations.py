"""Parse durations such as "1h30m", "45s" or "2h"."""

import re

_PART = re.compile(r"(\d)([hms])")
_SECONDS = {"h": 3600, "m": 60, "s": 1}


def parse_duration(text):
    """The number of seconds in `text`; ValueError if it is not a duration."""
    parts = _PART.findall(text)
    if not parts:
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(number) * _SECONDS[unit] for number, unit in parts)
