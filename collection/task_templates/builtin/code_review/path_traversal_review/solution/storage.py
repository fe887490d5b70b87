"""Serves files that users uploaded earlier."""

import os

UPLOAD_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "uploads")


def read_upload(filename, root=UPLOAD_ROOT):
    """The bytes of an uploaded file, by the name the user asks for."""
    root = os.path.realpath(root)
    path = os.path.realpath(os.path.join(root, filename))
    if os.path.commonpath([root, path]) != root:
        raise ValueError(f"{filename!r} is outside the upload folder")
    with open(path, "rb") as f:
        return f.read()
