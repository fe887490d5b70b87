"""Streams records from the paginated API into a JSON Lines file."""

import json
from datetime import date, datetime
from decimal import Decimal


def _default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot export {type(value).__name__}: {value!r}")


def export_jsonl(fetch_page, out):
    """Export every record, page by page, to the text stream `out`.

    `fetch_page(cursor)` returns `(records, next_cursor)`; start with cursor None and
    stop when next_cursor is None. Each record becomes one line of JSON with sorted
    keys; datetimes and dates are written as ISO 8601 strings and Decimals as strings.
    Returns the number of records written.
    """
    count = 0
    cursor = None
    while True:
        records, cursor = fetch_page(cursor)
        for record in records:
            out.write(json.dumps(record, sort_keys=True, default=_default) + "\n")
            count += 1
        if cursor is None:
            return count
