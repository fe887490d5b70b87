"""Sign-up and profile updates."""

from validation import validate_contact, validate_username

USERS = {}


def signup(username, email, postcode):
    errors = validate_username(username) + validate_contact(email, postcode)
    if errors:
        return {"ok": False, "errors": errors}
    USERS[username] = {"email": email, "postcode": postcode}
    return {"ok": True, "errors": []}


def update_profile(username, email, postcode):
    if username not in USERS:
        return {"ok": False, "errors": ["username: unknown"]}
    errors = validate_contact(email, postcode)
    if errors:
        return {"ok": False, "errors": errors}
    USERS[username].update(email=email, postcode=postcode)
    return {"ok": True, "errors": []}
