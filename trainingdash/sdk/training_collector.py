"""The seed's `training_collector` module: sessions, multi-agent systems and chains collected."""

from __future__ import annotations

from collection.sessions.chains import ConversationChainCollector
from collection.sessions.collector import TrainingDataCollector
from collection.sessions.multi_agent import MultiAgentCollector

__all__ = ["ConversationChainCollector", "MultiAgentCollector", "TrainingDataCollector"]
