"""Exports orders for the accounting spreadsheet."""

import csv

FIELDS = ["id", "customer", "total", "paid"]


def export_csv(orders, path):
    """Write `orders` (dicts with the FIELDS keys) to `path` as CSV with a header row.

    Totals are written with two decimals and `paid` as yes/no. Returns the number of
    orders written.
    """
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        for order in orders:
            paid = "yes" if order["paid"] else "no"
            writer.writerow([order["id"], order["customer"], f"{order['total']:.2f}", paid])
            count += 1
    return count
