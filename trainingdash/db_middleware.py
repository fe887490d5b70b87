"""Dramatiq middleware that gives each message fresh Django database connections."""

from __future__ import annotations

from django import db
from dramatiq.middleware import Middleware


class DbConnectionsMiddleware(Middleware):
    # Worker threads live for long; stale or broken connections must not leak between jobs.
    def before_process_message(self, broker, message) -> None:
        db.close_old_connections()

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        db.close_old_connections()

    after_skip_message = after_process_message

    def before_worker_thread_shutdown(self, broker, thread) -> None:
        db.connections.close_all()
