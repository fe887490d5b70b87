"""Hidden check: AUDIT.md names both problems; no injection, no secret in the source."""

import os
import pathlib
import sys
import tempfile

sys.path.insert(0, os.getcwd())
os.environ["PAYMENTS_API_TOKEN"] = "t0k-from-env"
import app  # noqa: E402

audit = pathlib.Path("AUDIT.md")
if not audit.is_file():
    sys.exit("AUDIT.md is missing")
text = audit.read_text().lower()
if "injection" not in text:
    sys.exit("AUDIT.md does not name the command injection")
if not any(word in text for word in ("secret", "token", "credential", "hard-coded", "hardcoded")):
    sys.exit("AUDIT.md does not name the hard-coded secret")
if "sk-live" in pathlib.Path("app.py").read_text():
    sys.exit("the live token is still in app.py")
if app.auth_header() != {"Authorization": "Bearer t0k-from-env"}:
    sys.exit("auth_header() does not use PAYMENTS_API_TOKEN")
if not app.disk_usage("."):
    sys.exit("disk_usage() no longer works")
with tempfile.TemporaryDirectory() as tmp:
    os.chdir(tmp)
    for attack in ["x; touch injected1", "$(touch injected2)", "`touch injected3`"]:
        app.disk_usage(attack)
    planted = sorted(p.name for p in pathlib.Path(tmp).iterdir())
    if planted:
        sys.exit(f"disk_usage() still runs injected commands: {planted}")
print("audit ok")
