"""The items listing endpoint (see API.md for the contract)."""

ITEMS = [f"item-{i}" for i in range(1, 96)]
MAX_PER_PAGE = 100


def list_items(page=1, per_page=20):
    if page < 1:
        raise ValueError("page is 1-based: page must be >= 1")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ValueError(f"per_page must be between 1 and {MAX_PER_PAGE}")
    start = (page - 1) * per_page
    items = ITEMS[start : start + per_page]
    return {
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": len(ITEMS),
        "has_next": start + per_page < len(ITEMS),
    }
