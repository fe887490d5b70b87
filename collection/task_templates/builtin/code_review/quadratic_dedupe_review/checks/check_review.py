"""Hidden check: REVIEW.md names the quadratic scan, and the function is linear."""

import os
import pathlib
import sys

sys.path.insert(0, os.getcwd())
from emails import unique_addresses  # noqa: E402

review = pathlib.Path("REVIEW.md")
if not review.is_file():
    sys.exit("REVIEW.md is missing")
text = review.read_text().lower().replace(" ", "")
if not any(word in text for word in ("quadratic", "o(n^2)", "o(n²)", "o(n**2)", "o(n*n)")):
    sys.exit("REVIEW.md does not say the dedupe is quadratic")

comparisons = 0


class Key(str):
    """A lowered address that counts how often it is compared."""

    def __eq__(self, other):
        global comparisons
        comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


class Address(str):
    def strip(self):
        return Address(str.strip(self))

    def lower(self):
        return Key(str.lower(self))


addresses = [Address(f"user{i}@example.com") for i in range(1000)]
out = unique_addresses(addresses + addresses[:50])
if [str(a) for a in out] != [str(a) for a in addresses]:
    sys.exit("unique_addresses changed its output")
if comparisons > 10 * len(addresses):
    sys.exit(f"{comparisons} comparisons for {len(addresses)} addresses: still quadratic")
print("review ok")
