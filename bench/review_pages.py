"""Review pages benchmark: server time of the list, queue, example page and admin at scale.

    .venv/bin/python bench/review_pages.py [--db sqlite|postgres|both] [--examples 100000]
        [--repeat 30] [--sql]

Fills a fresh database (SQLite in a temp dir, or PostgreSQL's `bench_review`, dropped and
created again; see `--pg-url`) with `--examples` training examples, a tenth with ~20-message
trajectories (bench/review_data.py), then requests each page in-process with Django's test
client as an admin, `--repeat` times after a warm-up, and prints p50 / p95 server time.

Each page's baseline is the bare SQL it runs, measured in the same process: its statements are
captured once and re-run `--repeat` times on a raw cursor (rows fetched). "page/SQL" is the
ratio of the p50s, i.e. how much of the time is ours rather than the database's. "queries" is
the page's query count; "@5" is the count for the same page showing 5 rows (a filter that only
the 5 marker examples match, or a 5-message trajectory): it should be the same. The example page
and the queue open the same ~20-message trajectory (a sub-agent, a tool error); it is the best
unreviewed example, so `/review/` starts there. The target is p95 under 150 ms at 100,000
examples. A page that answers anything but 200 is an error row; "slowest statements" shows
where each page's SQL time goes (`--sql`: every statement).

Deep and last list pages are found through the list's own pagination links ("Next", "Last",
"Previous"): numbered pages (`?page=N`) go to the middle and the end; keyset links are followed
(the deep page is `--hops` pages back from the last one).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

ROOT = Path(__file__).resolve().parent.parent
PG_URL = "postgres://postgres@127.0.0.1:5432/bench_review"
TARGET_MS = 150.0
TARGET_EXAMPLES = 100_000
WARMUP = 3
# Statements that only make sense inside the request's own transaction.
TRANSACTION_CONTROL = re.compile(r"^\s*(SAVEPOINT|RELEASE|ROLLBACK|BEGIN|COMMIT)\b", re.I)


# --- the database ------------------------------------------------------------------------------


def recreate_postgres(url: str) -> None:
    import psycopg

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_postgres(url: str) -> None:
    import psycopg

    parts = urlparse(url)
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def setup_django(db: str, pg_url: str, *, fresh: bool = True) -> Path:
    """Production-like settings (DEBUG off, manifest static files) on a fresh, migrated DB
    (`fresh=False`: the PostgreSQL database at `pg_url` as it is, migrated)."""
    data = Path(tempfile.mkdtemp(prefix="trainingdash-bench-review-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="trainingdash.settings",
        TRAININGDASH_DATA_DIR=str(data),
        SECRET_KEY="bench-only-" + "b" * 40,
        TRAININGDASH_HTTPS="0",
        DEBUG="0",
        ALLOWED_HOSTS="testserver",
        # Keep PostgreSQL's connection for the whole run (the default recycles it every 60 s).
        CONN_MAX_AGE="3600",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("DATABASE_URL", None)
    if db == "postgres":
        if fresh:
            recreate_postgres(pg_url)
        os.environ["DATABASE_URL"] = pg_url
    sys.path.insert(0, str(ROOT))
    import trainingdash

    trainingdash.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return data


# --- finding the list's pages ----------------------------------------------------------------


class Links(HTMLParser):
    """Every <a href> of a page with its text and rel."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []
        self._open: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            found = dict(attrs)
            self._open.append([found.get("href") or "", found.get("rel") or "", ""])

    def handle_data(self, data: str) -> None:
        for link in self._open:
            link[2] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open:
            href, rel, text = self._open.pop()
            self.links.append((href, text.strip(), rel))


def pager_link(html: str, url: str, *words: str) -> str | None:
    """The absolute URL of the link to this same list named by one of `words` (text or rel)."""
    parser = Links()
    parser.feed(html)
    path = urlparse(url).path
    for href, text, rel in parser.links:
        target = urljoin(url, href)
        if urlparse(target).path != path or "?" not in target:
            continue
        named = any(re.search(rf"\b{w}\b", text, re.I) or w in rel.lower() for w in words)
        if named:
            return target
    return None


def text_link(html: str, url: str, text: str) -> str | None:
    """The absolute URL of the link to this same page whose text is exactly `text`."""
    parser = Links()
    parser.feed(html)
    path = urlparse(url).path
    for href, shown, _rel in parser.links:
        target = urljoin(url, href)
        if shown == text and urlparse(target).path == path:
            return target
    return None


def with_page(url: str, number: int) -> str:
    parts = urlparse(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    query["page"] = str(number)
    return parts._replace(query=urlencode(query)).geturl()


def page_count(html: str) -> int | None:
    """The number of pages a numbered list says it has ("Page 1 of 400", or count / rows)."""
    text = re.sub(r"<[^>]+>", " ", html)
    said = re.search(r"Page\s+\d+\s+of\s+([\d,]+)", text)
    if said:
        return int(said.group(1).replace(",", ""))
    total = re.search(r"([\d,]+)\s+examples?\b", text)
    rows = len(set(re.findall(r'href="/examples/(\d+)/"', html)))
    if total and rows:
        return math.ceil(int(total.group(1).replace(",", "")) / rows)
    return None


@dataclass
class Paging:
    deep: str | None = None
    last: str | None = None
    problem: str = ""
    style: str = ""


def find_pages(client: Any, start: str, hops: int) -> Paging:
    """The deep and last pages of the list at `start`, through its own links."""
    response = client.get(start)
    if response.status_code != 200:
        return Paging(problem=f"the list answered {response.status_code}")
    html = response.content.decode()
    first_next = pager_link(html, start, "next")
    last = pager_link(html, start, "last")
    if first_next is None:
        return Paging(problem="no Next link on the first page")
    if "page" in parse_qs(urlparse(first_next).query):
        number = parse_qs(urlparse(last).query).get("page", [""])[0] if last else ""
        pages = int(number) if number.isdigit() else page_count(html)
        if not pages:
            return Paging(problem="numbered pages, but no page count or Last link")
        style = f"numbered, {pages} pages"
        return Paging(
            with_page(first_next, max(1, pages // 2)), with_page(first_next, pages), style=style
        )
    if last is None:
        deep = follow(client, first_next, "next", hops)
        return Paging(deep=deep, problem="keyset links, but no Last link", style="keyset")
    deep = follow(client, last, "previous|prev", hops)
    return Paging(deep, last, style=f"keyset, deep = {hops} pages back from the last")


def follow(client: Any, url: str, word: str, hops: int) -> str:
    for _ in range(hops):
        response = client.get(url)
        if response.status_code != 200:
            break
        found = pager_link(response.content.decode(), url, *word.split("|"))
        if found is None:
            break
        url = found
    return url


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Page:
    name: str
    url: str | None
    few_url: str | None = None  # the same page showing 5 rows
    few_link: str = ""  # or: the page's own link with this text (an admin filter choice)
    problem: str = ""  # why it could not be located


@dataclass
class Result:
    page: Page
    status: int = 0
    error: str = ""
    page_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    queries: int = 0
    few_queries: int | None = None
    few_status: int = 0
    statements: list[tuple[str, Any, bool]] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)
    statement_ms: list[float] = field(default_factory=list)
    size: int = 0
    final_url: str = ""


def capture(client: Any, url: str) -> tuple[Any, list[tuple[str, Any, bool]], list[str]]:
    """One request with its SQL: (response, the statements with their params, the same
    statements as the database log shows them, parameters filled in)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    statements: list[tuple[str, Any, bool]] = []

    def keep(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append((sql, params, many))
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(keep):
        response = client.get(url)
    return response, statements, [q["sql"] for q in queries.captured_queries]


def resolve(client: Any, url: str) -> tuple[Any, str]:
    """Follow up to three redirects (a queue may send you to its first example)."""
    response = client.get(url)
    for _ in range(3):
        if response.status_code not in (301, 302, 303, 307, 308):
            break
        url = urljoin(url, response["Location"])
        response = client.get(url)
    return response, url


def time_page(client: Any, url: str, repeat: int) -> list[float]:
    for _ in range(WARMUP):
        client.get(url)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    return times


def time_sql(
    statements: list[tuple[str, Any, bool]], repeat: int
) -> tuple[list[float], list[float]]:
    """Re-run the statements on a raw cursor: total ms per run, and each statement's median."""
    from django.db import connection

    runnable = [s for s in statements if not TRANSACTION_CONTROL.match(s[0])]
    totals: list[float] = []
    each: list[list[float]] = [[] for _ in runnable]
    with connection.cursor() as cursor:
        for run in range(WARMUP + repeat):
            total = 0.0
            for i, (sql, params, many) in enumerate(runnable):
                started = time.perf_counter()
                if many:
                    cursor.executemany(sql, params)
                else:
                    cursor.execute(sql, params)
                if cursor.description is not None:
                    cursor.fetchall()
                spent = (time.perf_counter() - started) * 1000
                total += spent
                if run >= WARMUP:
                    each[i].append(spent)
            if run >= WARMUP:
                totals.append(total)
    return totals, [statistics.median(t) for t in each]


def measure(client: Any, page: Page, repeat: int) -> Result:
    result = Result(page)
    if page.url is None:
        result.error = page.problem
        return result
    _response, url = resolve(client, page.url)
    result.final_url = url
    response, statements, shown = capture(client, url)
    result.status = response.status_code
    if response.status_code != 200:
        exc = getattr(response, "exc_info", None)
        reason = f"{exc[0].__name__}: {exc[1]}" if exc else response.reason_phrase
        result.error = reason.splitlines()[0][:120] if reason else ""
        return result
    result.statements, result.shown, result.queries = statements, shown, len(shown)
    result.size = len(response.content)
    result.page_ms = time_page(client, url, repeat)
    result.sql_ms, result.statement_ms = time_sql(statements, repeat)
    few_url = page.few_url
    if page.few_link:
        few_url = text_link(response.content.decode(), url, page.few_link) or few_url
    if few_url:
        few, _statements, few_shown = capture(client, few_url)
        result.few_status = few.status_code
        result.few_queries = len(few_shown) if few.status_code == 200 else None
    return result


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


# --- the pages ---------------------------------------------------------------------------------


def pages(client: Any, world: Any, hops: int) -> tuple[list[Page], str]:
    from review_data import FEW_CATEGORY, RARE_WORD, SEARCH_WORD

    few = f"?category={FEW_CATEGORY}"
    filtered = "min_quality=0.5&is_golden=true"
    paging = find_pages(client, "/examples/", hops)
    detail = f"/examples/{world.full_example_pk}/"
    return [
        Page("list", "/examples/", f"/examples/{few}"),
        Page(
            "list filtered",
            f"/examples/?category=debugging&{filtered}",
            f"/examples/{few}&{filtered}",
        ),
        Page("list text search", f"/examples/?q={SEARCH_WORD}", f"/examples/?q={RARE_WORD}"),
        Page("list deep page", paging.deep, problem=paging.problem),
        Page("list last page", paging.last, problem=paging.problem),
        Page("review queue", "/review/"),
        Page(
            "review queue ?example=",
            f"/review/?example={world.full_example_pk}",
            f"/review/?example={world.few_example_pk}",
        ),
        Page("example page", detail, f"/examples/{world.few_example_pk}/"),
        # The 5-row variants: the admin's own category filter link.
        Page("admin examples", "/admin/collection/trainingexample/", few_link=FEW_CATEGORY),
        Page(
            "admin examples validated",
            "/admin/collection/trainingexample/?validated__exact=1",
            few_link=FEW_CATEGORY,
        ),
        Page("admin executions", "/admin/collection/execution/", few_link=FEW_CATEGORY),
    ], paging.style or paging.problem


# --- the report --------------------------------------------------------------------------------


HEADER = (
    f"{'page':<26}{'status':>6}{'p50 ms':>9}{'p95 ms':>9}{'SQL p50':>9}{'page/SQL':>9}"
    f"{'queries':>8}{'@5':>4}{'const':>6}{'KB':>6}  target p95 < {TARGET_MS:.0f} ms"
)


def row(result: Result, examples: int) -> str:
    name = result.page.name
    if result.error or not result.page_ms:
        status = str(result.status or "-")
        return f"{name:<26}{status:>6}  ERROR {result.error}"
    page50, page95 = statistics.median(result.page_ms), p95(result.page_ms)
    sql50 = statistics.median(result.sql_ms)
    few = "-" if result.few_queries is None else str(result.few_queries)
    if result.few_status not in (0, 200):
        few = f"!{result.few_status}"  # the 5-row variant failed
    constant = "-" if result.few_queries is None else "yes"
    if result.few_queries is not None and result.few_queries != result.queries:
        constant = "NO"
    verdict = "PASS" if page95 < TARGET_MS else "FAIL"
    if examples < TARGET_EXAMPLES:
        verdict += "*"
    return (
        f"{name:<26}{result.status:>6}{page50:9.1f}{page95:9.1f}{sql50:9.2f}"
        f"{page50 / max(sql50, 1e-3):8.1f}x{result.queries:>8}{few:>4}{constant:>6}"
        f"{result.size / 1024:6.0f}  {verdict}"
    )


def slowest(result: Result, show_all: bool) -> list[str]:
    """The page's slowest statements (all of them with --sql), with their median time."""
    if not result.statement_ms:
        return []
    shown = result.shown
    if len(shown) != len(result.statements):
        shown = [sql for sql, _params, _many in result.statements]
    runnable = [s for s in shown if not TRANSACTION_CONTROL.match(s)]
    ranked = sorted(zip(result.statement_ms, runnable, strict=True), key=lambda t: -t[0])
    lines = [f"  {result.page.name} ({result.final_url}):"]
    for ms, sql in ranked if show_all else ranked[:2]:
        shown_sql = re.sub(r"\s+", " ", sql) if show_all else abbreviated(sql, 400)
        lines.append(f"    {ms:8.2f} ms  {shown_sql}")
    return lines


def abbreviated(sql: str, width: int) -> str:
    """One line, the column list of the outer SELECT left out: what is read, not which."""
    sql = re.sub(r"\s+", " ", sql)
    if sql.startswith("SELECT "):
        depth = 0
        for match in re.finditer(r"[()]| FROM ", sql):
            token = match.group()
            depth += {"(": 1, ")": -1}.get(token, 0)
            if token == " FROM " and depth == 0:
                if match.start() > 80:  # a short column list says what is counted or listed
                    distinct = "DISTINCT " if sql.startswith("SELECT DISTINCT ") else ""
                    sql = f"SELECT {distinct}...{sql[match.start() :]}"
                break
    return sql if len(sql) <= width else sql[:width] + "..."


def check_search_index(word: str) -> str:
    """The full-text index must agree with search_text after bulk inserts (triggers, index)."""
    from collection.models import TrainingExample
    from collection.search import matching

    found = matching(TrainingExample.objects.all(), word).count()
    stored = TrainingExample.objects.filter(search_text__icontains=word).count()
    verdict = "consistent" if found == stored else "INCONSISTENT: the index missed rows"
    return (
        f"full-text search finds {found:,} examples for {word!r}, {stored:,} contain it: {verdict}"
    )


def analyze(vendor: str) -> None:
    """Planner statistics, as autovacuum would have them by the time anyone looks."""
    from django.db import connection

    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def run(args: argparse.Namespace) -> None:
    data = setup_django(args.db, args.pg_url)
    try:
        report(args)
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(data, ignore_errors=True)
        if args.db == "postgres" and not args.keep:
            drop_postgres(args.pg_url)


def populated(args: argparse.Namespace) -> tuple[Any, Any]:
    """The database filled with `args.examples` examples (analysed, static files collected) and
    a test client signed in as an admin: what every page benchmark starts from."""
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from review_data import populate

    from collection.roles import ADMIN, assign_role

    world = populate(args.examples, seed=args.seed, progress=progress)
    print(file=sys.stderr)
    analyze(connection.vendor)
    # Manifest static files (DEBUG off), collected now: other work may add files meanwhile.
    call_command("collectstatic", interactive=False, verbosity=0)
    admin = User.objects.create_user("bench-admin")
    assign_role(admin, ADMIN)
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    return world, client


def report(args: argparse.Namespace) -> None:
    from django.db import connection
    from review_data import SEARCH_WORD

    for name in ("django.request", "django.security"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # errors are rows
    world, client = populated(args)
    listed, paging = pages(client, world, args.hops)
    label = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
    print(
        f"\n{label}: {world.examples:,} examples ({world.trajectories:,} with trajectories, "
        f"{world.messages:,} messages, {world.tool_calls:,} tool calls), generated in "
        f"{world.seconds:.1f} s; {args.repeat} requests per page; list paging: {paging}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(check_search_index(SEARCH_WORD))
    print(HEADER)
    results = []
    for page in listed:
        result = measure(client, page, args.repeat)
        results.append(result)
        print(row(result, world.examples), flush=True)
    if world.examples < TARGET_EXAMPLES:
        print(f"* at {world.examples:,} examples; the target is for {TARGET_EXAMPLES:,}")
    print("\nslowest statements (median of the re-runs):")
    for result in results:
        for line in slowest(result, args.sql):
            print(line)


def progress(done: int, total: int) -> None:
    print(f"\r  generating examples: {done:,} / {total:,}", end="", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page")
    parser.add_argument("--hops", type=int, default=5, help="pages back from the last (keyset)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--sql", action="store_true", help="print every statement of each page")
    args = parser.parse_args()
    if args.db != "both":
        run(args)
        return
    # Django is configured once per process: one child per database.
    for db in ("sqlite", "postgres"):
        options = [f"--examples={args.examples}", f"--repeat={args.repeat}"]
        options += [f"--hops={args.hops}", f"--seed={args.seed}", f"--pg-url={args.pg_url}"]
        options += ["--keep"] * args.keep + ["--sql"] * args.sql
        subprocess.run([sys.executable, __file__, f"--db={db}", *options], check=False)


if __name__ == "__main__":
    main()
