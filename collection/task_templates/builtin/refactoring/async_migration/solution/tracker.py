"""Page sizes for the price tracker's dashboard."""

import asyncio

from fetcher import fetch_all


async def page_sizes(urls):
    pages = await fetch_all(urls)
    return {url: len(page) for url, page in zip(urls, pages, strict=True)}


def main(urls):
    for url, size in asyncio.run(page_sizes(urls)).items():
        print(f"{url}\t{size}")
