"""Fetches product pages for the price tracker."""

import time


def fetch(url):
    """Pretend network call: 50 ms per page."""
    time.sleep(0.05)
    return f"<html>{url}</html>"


def fetch_all(urls):
    """The pages of `urls`, in the same order."""
    return [fetch(url) for url in urls]
