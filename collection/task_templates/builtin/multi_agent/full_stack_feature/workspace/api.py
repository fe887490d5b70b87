"""The to-do API: request payloads in, (status, body) out."""

TODOS = []


def create_todo(payload):
    """Add a to-do from {"title": str}; returns (status, body)."""
    title = str(payload.get("title", "")).strip()
    if not title:
        return 400, {"error": "title is required"}
    todo = {"id": len(TODOS) + 1, "title": title, "done": False}
    TODOS.append(todo)
    return 201, todo


def list_todos():
    return 200, list(TODOS)
