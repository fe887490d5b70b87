"""Requests the CLI makes besides the agent loop get a short reply and never reach a policy.

Logged runs of the bundled CLI (2.1.x, SDK mode, with or without non-essential traffic)
showed only agent-loop and sub-agent requests plus ``HEAD /api/hello``. The CLI's code also
holds a model check that sends "Hi" with ``max_tokens: 1`` (when a model is validated); such
probes must not be failed or slowed by the session's policy (``model_error``, ``slow``).
"""

from __future__ import annotations

import logging

from .request import ModelRequest
from .turns import Turn

logger = logging.getLogger(__name__)


def side_reply(request: ModelRequest) -> Turn | None:
    """A short answer when this is not an agent-loop request, else None."""
    max_tokens = request.body.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens <= 1:
        logger.debug("scripted model: answering a max_tokens=%s probe", max_tokens)
        return Turn.text("Hi")
    return None
