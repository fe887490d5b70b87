"""The seed's `training_data` module: task and execution records, examples, storage."""

from __future__ import annotations

from collection.models import AgentRole, Difficulty, TaskStatus, TrainingExample
from collection.schema import TaskDefinition, TaskExecution
from collection.storage import SQLiteTrainingStorage, TrainingStorage
from exports.analytics.storage import DuckDBTrainingStorage

__all__ = [
    "AgentRole",
    "Difficulty",
    "DuckDBTrainingStorage",
    "SQLiteTrainingStorage",
    "TaskDefinition",
    "TaskExecution",
    "TaskStatus",
    "TrainingExample",
    "TrainingStorage",
]
