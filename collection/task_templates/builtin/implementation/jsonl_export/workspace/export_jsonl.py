"""Streams records from the paginated API into a JSON Lines file."""


def export_jsonl(fetch_page, out):
    """Export every record, page by page, to the text stream `out`.

    `fetch_page(cursor)` returns `(records, next_cursor)`; start with cursor None and
    stop when next_cursor is None. Each record becomes one line of JSON with sorted
    keys; datetimes and dates are written as ISO 8601 strings and Decimals as strings.
    Returns the number of records written.
    """
    raise NotImplementedError
