"""HTML for the to-do list page."""

from html import escape


def render_todo(todo):
    classes = "todo done" if todo["done"] else "todo"
    return f'<li class="{classes}">{escape(todo["title"])}</li>'


def render_list(todos):
    return "<ul>" + "".join(render_todo(todo) for todo in todos) + "</ul>"
