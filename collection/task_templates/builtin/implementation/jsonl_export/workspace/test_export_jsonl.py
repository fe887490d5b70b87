import io
import json
import unittest
from datetime import UTC, date, datetime
from decimal import Decimal

from export_jsonl import export_jsonl

PAGES = {
    None: ([{"id": 1, "b": 2, "a": 1}, {"id": 2, "when": date(2024, 5, 1)}], "p2"),
    "p2": ([], "p3"),
    "p3": (
        [{"id": 3, "at": datetime(2024, 5, 1, 12, 30, tzinfo=UTC)}],
        "p4",
    ),
    "p4": ([{"id": 4, "price": Decimal("9.99")}], None),
}


class ExportJsonlTest(unittest.TestCase):
    def setUp(self):
        self.cursors = []

    def fetch(self, cursor):
        self.cursors.append(cursor)
        return PAGES[cursor]

    def test_every_page_is_exported_in_order(self):
        out = io.StringIO()
        self.assertEqual(export_jsonl(self.fetch, out), 4)
        self.assertEqual(self.cursors, [None, "p2", "p3", "p4"])
        lines = out.getvalue().splitlines()
        self.assertEqual([json.loads(line)["id"] for line in lines], [1, 2, 3, 4])

    def test_keys_are_sorted_and_values_serialised(self):
        out = io.StringIO()
        export_jsonl(self.fetch, out)
        lines = out.getvalue().splitlines()
        self.assertEqual(lines[0], '{"a": 1, "b": 2, "id": 1}')
        self.assertEqual(json.loads(lines[1])["when"], "2024-05-01")
        self.assertEqual(json.loads(lines[2])["at"], "2024-05-01T12:30:00+00:00")
        self.assertEqual(json.loads(lines[3])["price"], "9.99")

    def test_an_empty_source(self):
        out = io.StringIO()
        self.assertEqual(export_jsonl(lambda cursor: ([], None), out), 0)
        self.assertEqual(out.getvalue(), "")


if __name__ == "__main__":
    unittest.main()
