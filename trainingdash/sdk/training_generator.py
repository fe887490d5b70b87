"""The seed's `training_generator` module: the task template library and batch generation."""

from __future__ import annotations

from collection.jobs.batches import BatchTrainingGenerator
from collection.task_templates import TaskTemplateLibrary

__all__ = ["BatchTrainingGenerator", "TaskTemplateLibrary"]
