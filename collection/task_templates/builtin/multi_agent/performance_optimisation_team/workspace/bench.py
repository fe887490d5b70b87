"""Counts order-id comparisons for a night's volume (wall time is too noisy here).

Usage: python bench.py [--check]   (--check fails when a function is over budget)
"""

import sys

import reconcile

ORDERS = 400
BUDGET = 4 * ORDERS  # comparisons per run: linear in the number of orders


class OrderId:
    comparisons = 0

    def __init__(self, value):
        self.value = value

    def __hash__(self):
        return hash(self.value)

    def __eq__(self, other):
        OrderId.comparisons += 1
        return isinstance(other, OrderId) and self.value == other.value


def measure(fn):
    orders = [{"id": OrderId(i), "amount": i % 50 + 1} for i in range(ORDERS)]
    payments = [{"order_id": OrderId(i), "amount": i % 50 + 1} for i in range(0, ORDERS, 3)]
    OrderId.comparisons = 0
    fn(orders, payments)
    return OrderId.comparisons


def main(check):
    over = []
    for name in ("match_payments", "unpaid_total"):
        count = measure(getattr(reconcile, name))
        print(f"{name}: {count} comparisons (budget {BUDGET})")
        if count > BUDGET:
            over.append(name)
    if check and over:
        sys.exit(f"over budget: {', '.join(over)}")


if __name__ == "__main__":
    main("--check" in sys.argv)
