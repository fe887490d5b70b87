"""Matches payments to orders for the nightly reconciliation."""


def _first_payment_by_order_id(payments):
    first = {}
    for payment in payments:
        first.setdefault(payment["order_id"], payment)
    return first


def match_payments(orders, payments):
    """(order, payment or None) for each order, paired by order id; the first payment wins."""
    by_id = _first_payment_by_order_id(payments)
    return [(order, by_id.get(order["id"])) for order in orders]


def unpaid_total(orders, payments):
    """The total amount of the orders that have no payment."""
    paid = _first_payment_by_order_id(payments)
    return sum(order["amount"] for order in orders if order["id"] not in paid)
