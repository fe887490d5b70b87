"""The seed's `conversation_chains` module: multi-step workflows, run in dependency order."""

from __future__ import annotations

from collection.sessions.chains import ChainError, ChainStep, ConversationChain

__all__ = ["ChainError", "ChainStep", "ConversationChain"]
