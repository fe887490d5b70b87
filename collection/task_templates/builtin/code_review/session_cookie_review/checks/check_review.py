"""Hidden check: the review names both problems; cookies neither execute nor forge."""

import base64
import builtins
import json
import os
import pathlib
import pickle
import sys

sys.path.insert(0, os.getcwd())
from sessions import dump_session, load_session  # noqa: E402

review = pathlib.Path("REVIEW.md")
if not review.is_file():
    sys.exit("REVIEW.md is missing")
text = review.read_text().lower()
if "pickle" not in text or not any(w in text for w in ("code execution", "arbitrary code")):
    sys.exit("REVIEW.md does not explain that unpickling cookies executes code")
if not any(w in text for w in ("sign", "hmac", "tamper", "forge")):
    sys.exit("REVIEW.md does not mention that cookies are unsigned")

data = {"user": "ann", "admin": False, "cart": [1, 2]}
if load_session(dump_session(data)) != data:
    sys.exit("sessions no longer round-trip")


class Exploit:
    def __reduce__(self):
        return (exec, ("import builtins; builtins.PWNED = True",))


attacks = {
    "a pickle": base64.urlsafe_b64encode(pickle.dumps(Exploit())).decode(),
    "unsigned JSON": base64.urlsafe_b64encode(json.dumps({"admin": True}).encode()).decode(),
}
cookie = dump_session(data)
middle = len(cookie) // 2
flipped = "A" if cookie[middle] != "A" else "B"
attacks["a tampered cookie"] = cookie[:middle] + flipped + cookie[middle + 1 :]
for name, attack in attacks.items():
    try:
        session = load_session(attack)
    except ValueError:
        continue
    except Exception as exc:
        sys.exit(f"{name} fails with {exc!r}; it must be refused with ValueError")
    finally:
        if getattr(builtins, "PWNED", False):
            sys.exit("loading a cookie executed code")
    sys.exit(f"{name} was accepted as {session!r}")
print("review ok")
