"""Hidden check: REVIEW.md names the contract violations, and list_items meets API.md."""

import os
import pathlib
import sys

sys.path.insert(0, os.getcwd())
from api import ITEMS, list_items  # noqa: E402

review = pathlib.Path("REVIEW.md")
if not review.is_file():
    sys.exit("REVIEW.md is missing")
text = review.read_text().lower()
if "per_page" not in text:
    sys.exit("REVIEW.md does not mention the unbounded per_page")
if not any(w in text for w in ("off-by-one", "off by one", "1-based", "one-based", "0-based")):
    sys.exit("REVIEW.md does not mention the off-by-one page numbering")

first = list_items()
if first.get("items") != ITEMS[:20] or first.get("page") != 1 or first.get("per_page") != 20:
    sys.exit(f"page 1 is wrong: {first}")
if first.get("has_next") is not True or first.get("total") != len(ITEMS):
    sys.exit(f"page 1 metadata is wrong: {first}")
last = list_items(page=5, per_page=20)
if last.get("items") != ITEMS[80:] or last.get("has_next") is not False:
    sys.exit(f"the last page is wrong: {last}")
exact = list_items(page=19, per_page=5)
if exact.get("items") != ITEMS[90:] or exact.get("has_next") is not False:
    sys.exit(f"a last page that ends exactly is wrong: {exact}")
for bad in [{"page": 0}, {"page": -1}, {"per_page": 0}, {"per_page": 101}]:
    try:
        list_items(**bad)
    except ValueError:
        continue
    sys.exit(f"list_items({bad}) must raise ValueError")
if len(list_items(per_page=100)["items"]) != len(ITEMS):
    sys.exit("per_page=100 must be allowed")
print("review ok")
