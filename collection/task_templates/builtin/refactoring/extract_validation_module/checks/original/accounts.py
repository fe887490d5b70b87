"""Sign-up and profile updates."""

import re

USERS = {}


def signup(username, email, postcode):
    errors = []
    if not re.fullmatch(r"[a-z0-9_]{3,20}", username):
        errors.append("username: 3-20 lowercase letters, digits or _")
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", email):
        errors.append("email: not an address")
    if not re.fullmatch(r"\d{5}", postcode):
        errors.append("postcode: five digits")
    if errors:
        return {"ok": False, "errors": errors}
    USERS[username] = {"email": email, "postcode": postcode}
    return {"ok": True, "errors": []}


def update_profile(username, email, postcode):
    if username not in USERS:
        return {"ok": False, "errors": ["username: unknown"]}
    errors = []
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", email):
        errors.append("email: not an address")
    if not re.fullmatch(r"\d{5}", postcode):
        errors.append("postcode: five digits")
    if errors:
        return {"ok": False, "errors": errors}
    USERS[username].update(email=email, postcode=postcode)
    return {"ok": True, "errors": []}
