"""Page sizes for the price tracker's dashboard."""

from fetcher import fetch_all


def page_sizes(urls):
    pages = fetch_all(urls)
    return {url: len(page) for url, page in zip(urls, pages, strict=True)}


def main(urls):
    for url, size in page_sizes(urls).items():
        print(f"{url}\t{size}")
