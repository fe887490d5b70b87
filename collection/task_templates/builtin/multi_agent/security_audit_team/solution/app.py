"""Admin helpers for the status page."""

import os
import subprocess


def auth_header():
    """The header for calls to the payments API (token from PAYMENTS_API_TOKEN)."""
    return {"Authorization": f"Bearer {os.environ['PAYMENTS_API_TOKEN']}"}


def disk_usage(path):
    """`du -sh <path>` for the admin page; `path` comes from the query string."""
    result = subprocess.run(["du", "-sh", "--", path], capture_output=True, text=True)
    return result.stdout.split()[0] if result.stdout else ""
