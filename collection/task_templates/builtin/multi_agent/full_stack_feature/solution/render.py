"""HTML for the to-do list page."""

from html import escape


def render_todo(todo, today=None):
    """One <li>; shows the due date, and marks an open to-do past it as overdue."""
    classes = ["todo"]
    if todo["done"]:
        classes.append("done")
    due = todo.get("due")
    if due and not todo["done"] and today is not None and due < today.isoformat():
        classes.append("overdue")
    label = escape(todo["title"])
    if due:
        label += f' <span class="due">due {escape(due)}</span>'
    return f'<li class="{" ".join(classes)}">{label}</li>'


def render_list(todos, today=None):
    return "<ul>" + "".join(render_todo(todo, today) for todo in todos) + "</ul>"
