"""Plain-text lines for the finance team's reports."""


def invoice_line(description, cents):
    amount = f"{cents // 100:,}.{cents % 100:02d}"
    return f"{description:<30}{'$' + amount:>15}"


def summary_line(label, total_cents, count):
    amount = f"{total_cents // 100:,}.{total_cents % 100:02d}"
    return f"{label}: ${amount} over {count} invoices"


def refund_line(description, cents):
    amount = f"{cents // 100:,}.{cents % 100:02d}"
    return f"REFUND {description}: -${amount}"
