"""Hidden check: behaviour is unchanged (golden outputs from the original code)."""

import importlib.util
import inspect  # noqa: F401
import os
import pathlib
import sys

sys.path.insert(0, os.getcwd())
sys.dont_write_bytecode = True  # keep checks/ free of __pycache__


def original(name):
    """The module as it was before the refactoring (kept in checks/original/)."""
    path = pathlib.Path(__file__).resolve().parent / "original" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"original_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


import asyncio  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402

import fetcher  # noqa: E402
import tracker  # noqa: E402

for module, name in [(fetcher, "fetch"), (fetcher, "fetch_all"), (tracker, "page_sizes")]:
    if not inspect.iscoroutinefunction(getattr(module, name)):
        sys.exit(f"{module.__name__}.{name} is not a coroutine function")
urls = [f"https://shop.example/p/{i}" for i in range(1, 6)]
expected = {url: len(f"<html>{url}</html>") for url in urls}
if asyncio.run(tracker.page_sizes(urls)) != expected:
    sys.exit("page_sizes() returns something different")
printed = io.StringIO()
with contextlib.redirect_stdout(printed):
    tracker.main(urls)
if printed.getvalue() != "".join(f"{u}\t{n}\n" for u, n in expected.items()):
    sys.exit("tracker.main() prints something different")

in_flight = peak = 0


async def slow_fetch(url):
    global in_flight, peak
    in_flight += 1
    peak = max(peak, in_flight)
    await asyncio.sleep(0.01 if url.endswith("0") else 0.02)
    in_flight -= 1
    return url.upper()


fetcher.fetch = slow_fetch
many = [f"u{i}" for i in range(20)]
if asyncio.run(fetcher.fetch_all(many)) != [u.upper() for u in many]:
    sys.exit("fetch_all() loses the order of the pages")
if peak < 2:
    sys.exit("fetch_all() still fetches one page at a time")
print("golden ok")
