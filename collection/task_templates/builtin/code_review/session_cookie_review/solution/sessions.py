"""Keeps the signed-in user's session in a browser cookie."""

import base64
import hashlib
import hmac
import json
import os

SECRET_KEY = os.environ.get("SESSION_SECRET", "dev-only-secret").encode()


def _sign(payload):
    return hmac.new(SECRET_KEY, payload, hashlib.sha256).hexdigest()


def dump_session(data):
    """The cookie value for a session dict: JSON, signed with SECRET_KEY."""
    payload = base64.urlsafe_b64encode(json.dumps(data, sort_keys=True).encode())
    return f"{payload.decode()}.{_sign(payload)}"


def load_session(cookie):
    """The session dict from a cookie value; ValueError unless its signature matches."""
    payload, _, signature = cookie.rpartition(".")
    if not payload or not hmac.compare_digest(signature, _sign(payload.encode())):
        raise ValueError("bad session signature")
    return json.loads(base64.urlsafe_b64decode(payload.encode()))
