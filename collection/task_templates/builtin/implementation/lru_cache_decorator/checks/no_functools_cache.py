"""Hidden check: the decorator is implemented, not borrowed from functools."""

import pathlib
import sys

source = pathlib.Path("memo.py").read_text()
if "lru_cache(" in source.replace("def lru_cache(", "") or "functools.cache" in source:
    sys.exit("memo.py uses functools' cache instead of implementing one")
