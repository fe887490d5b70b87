"""Keeps the signed-in user's session in a browser cookie."""

import base64
import pickle


def dump_session(data):
    """The cookie value for a session dict."""
    return base64.urlsafe_b64encode(pickle.dumps(data)).decode()


def load_session(cookie):
    """The session dict from a cookie value sent by the browser."""
    return pickle.loads(base64.urlsafe_b64decode(cookie.encode()))
