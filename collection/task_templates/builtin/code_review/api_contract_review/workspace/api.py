"""The items listing endpoint (see API.md for the contract)."""

ITEMS = [f"item-{i}" for i in range(1, 96)]


def list_items(page=1, per_page=20):
    start = page * per_page
    items = ITEMS[start : start + per_page]
    return {"items": items, "page": page, "total": len(ITEMS)}
