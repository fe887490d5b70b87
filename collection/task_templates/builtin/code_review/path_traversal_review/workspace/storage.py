"""Serves files that users uploaded earlier."""

import os

UPLOAD_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "uploads")


def read_upload(filename, root=UPLOAD_ROOT):
    """The bytes of an uploaded file, by the name the user asks for."""
    path = os.path.join(root, filename)
    with open(path, "rb") as f:
        return f.read()
