"""Admin helpers for the status page."""

import subprocess

API_TOKEN = "sk-live-51HxQv2eZvKYlo2C0aIiKJ"


def auth_header():
    """The header for calls to the payments API."""
    return {"Authorization": f"Bearer {API_TOKEN}"}


def disk_usage(path):
    """`du -sh <path>` for the admin page; `path` comes from the query string."""
    result = subprocess.run(f"du -sh {path}", shell=True, capture_output=True, text=True)
    return result.stdout.split()[0] if result.stdout else ""
