"""The seed's `training_export` module: every export format, evaluation sets, analytics."""

from __future__ import annotations

from exports.exporter import TrainingDataExporter
from exports.formats import FORMATS, ExportError

__all__ = ["FORMATS", "ExportError", "TrainingDataExporter"]
