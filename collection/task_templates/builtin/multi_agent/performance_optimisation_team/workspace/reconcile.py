"""Matches payments to orders for the nightly reconciliation."""


def match_payments(orders, payments):
    """(order, payment or None) for each order, paired by order id; the first payment wins."""
    matched = []
    for order in orders:
        found = None
        for payment in payments:
            if payment["order_id"] == order["id"]:
                found = payment
                break
        matched.append((order, found))
    return matched


def unpaid_total(orders, payments):
    """The total amount of the orders that have no payment."""
    total = 0
    for order in orders:
        if not any(payment["order_id"] == order["id"] for payment in payments):
            total += order["amount"]
    return total
