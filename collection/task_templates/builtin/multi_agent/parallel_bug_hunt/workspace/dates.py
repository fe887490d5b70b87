"""Date helpers for invoices."""

from datetime import timedelta


def add_business_days(start, days):
    """The date `days` business days (Monday to Friday) after `start`."""
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 6:
            days -= 1
    return current
