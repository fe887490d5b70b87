import csv
import os
import tempfile
import unittest

from export import export_csv

ORDERS = [
    {"id": 1, "customer": "Ann Lee", "total": 12.5, "paid": True},
    {"id": 2, "customer": "Smith, Jones & Co", "total": 1000, "paid": False},
    {"id": 3, "customer": 'Bob "The Builder"', "total": 0.1 + 0.2, "paid": True},
]


class ExportCsvTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.tmp.name, "orders.csv")

    def tearDown(self):
        self.tmp.cleanup()

    def read_rows(self):
        with open(self.path, newline="", encoding="utf-8") as f:
            return list(csv.reader(f))

    def test_writes_a_header_and_one_row_per_order(self):
        self.assertEqual(export_csv(ORDERS, self.path), 3)
        self.assertEqual(
            self.read_rows(),
            [
                ["id", "customer", "total", "paid"],
                ["1", "Ann Lee", "12.50", "yes"],
                ["2", "Smith, Jones & Co", "1000.00", "no"],
                ["3", 'Bob "The Builder"', "0.30", "yes"],
            ],
        )

    def test_no_orders_still_writes_the_header(self):
        self.assertEqual(export_csv([], self.path), 0)
        self.assertEqual(self.read_rows(), [["id", "customer", "total", "paid"]])

    def test_accepts_any_iterable(self):
        self.assertEqual(export_csv(iter(ORDERS[:2]), self.path), 2)


if __name__ == "__main__":
    unittest.main()
