"""The due-date feature, end to end: API and page."""

import unittest
from datetime import date

import api
from render import render_list, render_todo

DUE_ERROR = {"error": "due must be a date (YYYY-MM-DD)"}


class ApiTest(unittest.TestCase):
    def setUp(self):
        api.TODOS.clear()

    def test_create_without_a_due_date(self):
        status, todo = api.create_todo({"title": "Buy milk"})
        self.assertEqual(status, 201)
        self.assertEqual(todo, {"id": 1, "title": "Buy milk", "done": False, "due": None})

    def test_create_with_a_due_date(self):
        status, todo = api.create_todo({"title": "File taxes", "due": "2024-04-15"})
        self.assertEqual((status, todo["due"]), (201, "2024-04-15"))

    def test_an_invalid_due_date_is_refused(self):
        for bad in ["tomorrow", "2024-13-01", 20240415]:
            self.assertEqual(api.create_todo({"title": "x", "due": bad}), (400, DUE_ERROR))
        self.assertEqual(api.list_todos(), (200, []))

    def test_the_title_is_still_required(self):
        self.assertEqual(api.create_todo({"title": "  "}), (400, {"error": "title is required"}))


class RenderTest(unittest.TestCase):
    TODAY = date(2024, 5, 1)

    def todo(self, **fields):
        return {"id": 1, "title": "Taxes", "done": False, "due": None} | fields

    def test_the_due_date_is_shown(self):
        html = render_todo(self.todo(due="2024-06-01"), self.TODAY)
        self.assertEqual(
            html, '<li class="todo">Taxes <span class="due">due 2024-06-01</span></li>'
        )

    def test_an_open_todo_past_its_due_date_is_overdue(self):
        html = render_todo(self.todo(due="2024-04-15"), self.TODAY)
        self.assertIn('<li class="todo overdue">', html)

    def test_a_done_todo_is_never_overdue(self):
        html = render_todo(self.todo(due="2024-04-15", done=True), self.TODAY)
        self.assertIn('<li class="todo done">', html)

    def test_without_a_due_date(self):
        html = render_todo(self.todo(title="<b>Milk</b>"))
        self.assertEqual(html, '<li class="todo">&lt;b&gt;Milk&lt;/b&gt;</li>')

    def test_render_list_passes_today_on(self):
        self.assertIn("overdue", render_list([self.todo(due="2024-01-01")], self.TODAY))


if __name__ == "__main__":
    unittest.main()
