"""Plain-text lines for the finance team's reports."""


def format_amount(cents):
    """Whole cents as dollars with thousands separators: 123456 -> "1,234.56"."""
    return f"{cents // 100:,}.{cents % 100:02d}"


def invoice_line(description, cents):
    return f"{description:<30}{'$' + format_amount(cents):>15}"


def summary_line(label, total_cents, count):
    return f"{label}: ${format_amount(total_cents)} over {count} invoices"


def refund_line(description, cents):
    return f"REFUND {description}: -${format_amount(cents)}"
