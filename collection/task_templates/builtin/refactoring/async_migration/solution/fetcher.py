"""Fetches product pages for the price tracker."""

import asyncio


async def fetch(url):
    """Pretend network call: 50 ms per page."""
    await asyncio.sleep(0.05)
    return f"<html>{url}</html>"


async def fetch_all(urls):
    """The pages of `urls`, in the same order, fetched concurrently."""
    return list(await asyncio.gather(*(fetch(url) for url in urls)))
