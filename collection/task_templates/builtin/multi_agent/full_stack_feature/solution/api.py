"""The to-do API: request payloads in, (status, body) out."""

from datetime import date

TODOS = []


def create_todo(payload):
    """Add a to-do from {"title": str, "due": "YYYY-MM-DD" (optional)}; returns (status, body)."""
    title = str(payload.get("title", "")).strip()
    if not title:
        return 400, {"error": "title is required"}
    due = payload.get("due")
    if due is not None:
        try:
            date.fromisoformat(due)
        except (TypeError, ValueError):
            return 400, {"error": "due must be a date (YYYY-MM-DD)"}
    todo = {"id": len(TODOS) + 1, "title": title, "done": False, "due": due}
    TODOS.append(todo)
    return 201, todo


def list_todos():
    return 200, list(TODOS)
