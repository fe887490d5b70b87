"""Hidden check: word_wrap() is fixed for the reported cases and the edge cases."""

import os
import sys

sys.path.insert(0, os.getcwd())
from wrap import word_wrap  # noqa: E402

CASES = [
    (("", 5), []),
    (("hello", 10), ["hello"]),
    (("the quick brown fox", 10), ["the quick", "brown fox"]),
    (("a verylongword b", 4), ["a", "verylongword", "b"]),
    (("  spaced   out  ", 20), ["spaced out"]),
    (("one two", 3), ["one", "two"]),
]
for args, want in CASES:
    if word_wrap(*args) != want:
        sys.exit(f"word_wrap{args} = {word_wrap(*args)}, want {want}")
print("wrap ok")
