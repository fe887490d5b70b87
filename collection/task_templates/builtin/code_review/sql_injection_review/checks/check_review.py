"""Hidden check: REVIEW.md names the injection, and find_users is no longer injectable."""

import os
import pathlib
import sys

sys.path.insert(0, os.getcwd())
import users  # noqa: E402

review = pathlib.Path("REVIEW.md")
if not review.is_file():
    sys.exit("REVIEW.md is missing")
text = review.read_text().lower()
if "injection" not in text or "find_users" not in text:
    sys.exit("REVIEW.md does not name the SQL injection in find_users")
conn = users.connect()
users.add_user(conn, "ann", "ann@example.com")
users.add_user(conn, "bob", "bob@example.com")
try:
    leaked = users.find_users(conn, "x' OR '1'='1")
    quoted = users.find_users(conn, "O'Brien")
except Exception as exc:
    sys.exit(f"find_users fails on a quote: {exc!r}")
if leaked or quoted:
    sys.exit("find_users is still injectable")
if [row[1] for row in users.find_users(conn, "ann")] != ["ann"]:
    sys.exit("find_users no longer finds users")
print("review ok")
