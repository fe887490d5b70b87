"""Integration tests: the service on the real repository and a real SQLite file."""

import os
import tempfile
import unittest

from repository import StockRepository
from service import InventoryService, OutOfStock


class InventoryIntegrationTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.tmp.name, "stock.db")
        self.repository = StockRepository(self.path)
        self.service = InventoryService(self.repository)

    def tearDown(self):
        self.repository.close()
        self.tmp.cleanup()

    def reopen(self):
        self.repository.close()
        self.repository = StockRepository(self.path)
        self.service = InventoryService(self.repository)

    def test_received_stock_survives_reopening_the_database(self):
        self.service.receive("apple", 5)
        self.service.receive("apple", 3)
        self.reopen()
        self.assertEqual(self.repository.get("apple"), 8)

    def test_shipping_reduces_stock_persistently(self):
        self.service.receive("pear", 4)
        self.service.ship("pear", 4)
        self.reopen()
        self.assertEqual(self.repository.get("pear"), 0)

    def test_cannot_ship_more_than_in_stock(self):
        self.service.receive("fig", 2)
        with self.assertRaises(OutOfStock):
            self.service.ship("fig", 3)
        with self.assertRaises(OutOfStock):
            self.service.ship("unknown", 1)
        self.assertEqual(self.repository.get("fig"), 2)

    def test_non_positive_quantities_are_refused(self):
        for call in (self.service.receive, self.service.ship):
            with self.assertRaises(ValueError):
                call("kiwi", 0)

    def test_report_lists_items_in_stock_by_sku(self):
        self.service.receive("plum", 1)
        self.service.receive("apple", 2)
        self.service.receive("kiwi", 1)
        self.service.ship("kiwi", 1)
        self.reopen()
        self.assertEqual(self.service.report(), [("apple", 2), ("plum", 1)])


if __name__ == "__main__":
    unittest.main()
