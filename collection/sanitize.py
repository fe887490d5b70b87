"""What arrives from outside (transcript lines, live SDK messages, mirrored transcript lines)
made storable once, where it comes in.

    payload = storable(payload)   # a copy when anything had to change, else the same object

- NUL characters (PostgreSQL's text and jsonb refuse them; real tool output has them) and lone
  surrogates (no encoding stores them) become U+FFFD, in values and keys alike;
- JSON nested deeper than MAX_DEPTH is refused with a ValueError naming the limit: orjson
  writes at most 254 levels and Django's JSONField reads back fewer than that, so such a row
  would break every page and export that touched it.
"""

from __future__ import annotations

import re
from typing import Any

MAX_DEPTH = 200
REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # (a str holds surrogates only unpaired)


def storable(value: Any) -> Any:
    """`value` with NUL and lone surrogates replaced; ValueError if nested too deep."""
    return _clean(value, 0)


def may_need_cleaning(raw: bytes) -> bool:
    """Whether a JSON line parsed by orjson (which refuses lone surrogates) may hold a NUL or
    nest too deep: cheap checks on its bytes, so most lines are never walked."""
    return b"\\u0000" in raw or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH


def _clean(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return _UNSTORABLE.sub(REPLACEMENT, value) if _UNSTORABLE.search(value) else value
    if not isinstance(value, dict | list):
        return value
    if depth >= MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, list):
        items = [_clean(item, depth + 1) for item in value]
        changed = any(new is not old for new, old in zip(items, value, strict=True))
        return items if changed else value
    pairs = [(_clean(k, depth), _clean(v, depth + 1)) for k, v in value.items()]
    changed = any(
        new_k is not k or new_v is not v
        for (new_k, new_v), (k, v) in zip(pairs, value.items(), strict=True)
    )
    return dict(pairs) if changed else value


def storable_message(payload: dict[str, Any]) -> dict[str, Any]:
    """A live or mirrored message made storable; one nested too deep to store keeps its type
    and ids and says what was dropped (a session never fails over one message)."""
    try:
        return storable(payload)
    except ValueError as exc:
        ids = ("type", "subtype", "uuid", "session_id", "parent_tool_use_id", "parentUuid")
        kept = {key: payload[key] for key in ids if key in payload}
        return storable(kept | {"trainingdash_dropped": f"the message was {exc}"})
