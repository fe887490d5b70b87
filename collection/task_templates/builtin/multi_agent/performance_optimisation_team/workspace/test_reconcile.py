import unittest

from reconcile import match_payments, unpaid_total

ORDERS = [{"id": 1, "amount": 10}, {"id": 2, "amount": 20}, {"id": 3, "amount": 30}]
PAYMENTS = [
    {"order_id": 3, "amount": 30, "ref": "a"},
    {"order_id": 1, "amount": 10, "ref": "b"},
    {"order_id": 3, "amount": 30, "ref": "c"},
    {"order_id": 9, "amount": 99, "ref": "d"},
]


class ReconcileTest(unittest.TestCase):
    def test_orders_are_matched_in_order(self):
        matched = match_payments(ORDERS, PAYMENTS)
        self.assertEqual([o["id"] for o, _ in matched], [1, 2, 3])
        self.assertEqual([p and p["ref"] for _, p in matched], ["b", None, "a"])

    def test_the_first_payment_wins(self):
        self.assertEqual(match_payments(ORDERS[2:], PAYMENTS)[0][1]["ref"], "a")

    def test_unpaid_total(self):
        self.assertEqual(unpaid_total(ORDERS, PAYMENTS), 20)
        self.assertEqual(unpaid_total(ORDERS, []), 60)
        self.assertEqual(unpaid_total([], PAYMENTS), 0)


if __name__ == "__main__":
    unittest.main()
