"""The analytics page (every signed-in role): the examples list's filters, one chart and one
table per breakdown, a refresh, the HTML report and the CSV zip for the same filters; and
plotly.js itself, served from the plotly package.

The page, the report and the CSV answer from the analytics snapshot as it is and say how old it
is; an old snapshot is refreshed in the background (`exports.analytics.freshness`), so that no
request waits for a refresh. "Refresh" (`?refresh=1`) refreshes in the request, unless a
refresh is already under way. Their figures come from the result cache
(`exports.analytics.cache`): computed once per snapshot version and filters for every web
process; over a big snapshot an older version's figures are served (with their own date)
while the current ones are computed in the background.

plotly.js is served by a view rather than copied into static/ by a staticfiles finder: the file
stays the one the installed package ships (an upgrade needs no collectstatic), its URL carries
the file's digest so browsers keep it for a year, and it goes out gzipped (4.8 MB -> 1.4 MB).
"""

from __future__ import annotations

import gzip
from functools import cache
from typing import Any

from django.http import Http404, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from pydantic import ValidationError

from collection.queries import ExampleFilters, describe
from collection.views.examples import MORE_FILTERS, filter_choices
from exports.analytics import reports
from exports.analytics.cache import cached_analytics
from exports.analytics.charts import chart_views, plotly_bundle
from exports.analytics.engine import Analytics
from exports.analytics.freshness import Freshness, keep_fresh, refresh_now
from trainingdash.http import HtmxHttpRequest

# Query parameters that are not filters: the Refresh link's, and the list's paging.
NOT_FILTERS = ("refresh", "after", "before", "last")
YEAR = 365 * 24 * 3600


@require_GET
def index(request: HtmxHttpRequest) -> HttpResponse:
    query = _filter_query(request.GET)
    filters, error = _parse(query)
    freshness = refresh_now() if request.GET.get("refresh") else keep_fresh()
    analytics = cached_analytics(filters, wait=freshness.wait)
    context = filter_choices() | {
        "freshness": _as_read(freshness, analytics),
        "filters": filters,
        "query": query.urlencode(),
        "error": error,
        "summary": analytics.summary,
        "charts": chart_views(analytics, query.urlencode()),
        "more_filters": sum(1 for name in MORE_FILTERS if query.get(name)),
        "plotly": plotly_bundle(),
    }
    return render(request, "analytics/index.html", context, status=400 if error else 200)


@require_GET
def report_html(request: HtmxHttpRequest) -> HttpResponse:
    filters, error = _parse(_filter_query(request.GET))
    if error:  # never a report of everything for a filter that was mistyped
        return HttpResponseBadRequest(f"Bad filters: {error}", content_type="text/plain")
    freshness = keep_fresh()
    html = reports.render_html(cached_analytics(filters, wait=freshness.wait), filters)
    return _attachment(html.encode(), "text/html; charset=utf-8", "analytics.html")


@require_GET
def report_zip(request: HtmxHttpRequest) -> HttpResponse:
    filters, error = _parse(_filter_query(request.GET))
    if error:
        return HttpResponseBadRequest(f"Bad filters: {error}", content_type="text/plain")
    freshness = keep_fresh()
    data = reports.csv_zip(cached_analytics(filters, wait=freshness.wait), filters)
    return _attachment(data, "application/zip", "analytics-csv.zip")


@require_GET
def plotly_js(request: HtmxHttpRequest) -> HttpResponse:
    bundle = plotly_bundle()
    if request.GET.get("v", bundle.digest) != bundle.digest:
        raise Http404("an older plotly.js")  # never cache one file under another's name
    gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
    body = _gzipped_js() if gzipped else bundle.js
    response = _asset(body, "text/javascript; charset=utf-8")
    if gzipped:
        response["Content-Encoding"] = "gzip"
    patch_vary_headers(response, ["Accept-Encoding"])
    return response


@require_GET
def plotly_css(request: HtmxHttpRequest) -> HttpResponse:
    return _asset(plotly_bundle().css.encode(), "text/css; charset=utf-8")


@cache
def _gzipped_js() -> bytes:
    return gzip.compress(plotly_bundle().js, compresslevel=6, mtime=0)


def _asset(body: bytes, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = f"public, max-age={YEAR}, immutable"
    return response


def _attachment(body: bytes, content_type: str, name: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _as_read(freshness: Freshness, analytics: Analytics) -> Freshness:
    """The freshness of the state the figures were read from (a refresh may have ended in
    between; an older cached result is served while the current one is computed)."""
    refreshing = freshness.refreshing or analytics.stale
    return Freshness(analytics.as_of, refreshing, freshness.now)


def _filter_query(params: QueryDict) -> QueryDict:
    """The request's filters alone, empty ones dropped: the URL state every link carries."""
    query = QueryDict(mutable=True)
    for key in params:
        if key not in NOT_FILTERS and (value := params.get(key, "")):
            query[key] = value
    return query


def _parse(query: QueryDict) -> tuple[ExampleFilters, str]:
    """The filters, or none and what was wrong with them."""
    try:
        return ExampleFilters.from_query(_dict(query)), ""
    except ValidationError as exc:
        return ExampleFilters(), describe(exc)


def _dict(query: QueryDict) -> dict[str, Any]:
    return {key: query[key] for key in query}
