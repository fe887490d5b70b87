"""Hidden check: REVIEW.md names the traversal, and read_upload stays in its folder."""

import os
import pathlib
import sys
import tempfile

sys.path.insert(0, os.getcwd())
from storage import read_upload  # noqa: E402

review = pathlib.Path("REVIEW.md")
if not review.is_file():
    sys.exit("REVIEW.md is missing")
text = review.read_text().lower()
if "traversal" not in text or "read_upload" not in text:
    sys.exit("REVIEW.md does not name the path traversal in read_upload")

with tempfile.TemporaryDirectory() as tmp:
    base = pathlib.Path(tmp)
    (base / "uploads").mkdir()
    (base / "uploads" / "a.txt").write_text("a")
    (base / "secret.txt").write_text("secret")
    (base / "uploads_private").mkdir()
    (base / "uploads_private" / "key.txt").write_text("key")
    root = str(base / "uploads")
    if read_upload("a.txt", root=root) != b"a":
        sys.exit("read_upload no longer reads uploads")
    for attack in ["../secret.txt", str(base / "secret.txt"), "../uploads_private/key.txt"]:
        try:
            read_upload(attack, root=root)
        except (ValueError, PermissionError):
            continue
        except Exception as exc:
            sys.exit(f"{attack!r} fails with {exc!r} instead of being refused")
        sys.exit(f"read_upload still serves {attack!r}")
print("review ok")
