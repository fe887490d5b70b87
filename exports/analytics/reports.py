"""Analytics reports: one self-contained HTML file, or one CSV per table (and the summary).

    export_analytics("analytics", format="html")   # -> analytics/analytics.html, opens offline
    export_analytics("analytics", format="csv", filters={"category": "debugging"})
    # -> analytics/ with summary.csv, over_time.csv, by_category_difficulty.csv, ...

The numbers are the engine's (`exports.analytics.engine`), through the result cache the page
reads too (`exports.analytics.cache`): the same figures, computed once per snapshot version.
The HTML report inlines plotly.js, the page's script and every figure's JSON: opened from
file:// it needs no server and no network.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from collection.queries import ExampleFilters
from exports.analytics.charts import chart_views, plotly_bundle
from exports.formats.base import ExportError

if TYPE_CHECKING:
    from exports.analytics.engine import Analytics, Table

FORMATS = ("html", "csv")
HTML_NAME = "analytics.html"
SUMMARY_NAME = "summary.csv"


def export_analytics(
    output_dir: str | os.PathLike[str],
    format: str = "html",
    filters: ExampleFilters | dict[str, Any] | None = None,
) -> Path:
    """Write the report for the examples matching `filters`; returns the HTML file written, or
    (csv) the folder holding the CSV files."""
    if format not in FORMATS:
        raise ExportError(f"unknown analytics format {format!r}; choose one of {FORMATS}")
    from exports.analytics.cache import cached_analytics
    from exports.analytics.snapshot import refresh_snapshot

    chosen = _filters(filters)
    refresh_snapshot()  # up to date first, then the figures of that version (computed once)
    analytics = cached_analytics(chosen, wait=True)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if format == "html":
        return _write(out / HTML_NAME, render_html(analytics, chosen).encode())
    for name, data in csv_files(analytics).items():
        _write(out / name, data)
    return out


def render_html(analytics: Analytics, filters: ExampleFilters | None = None) -> str:
    context = {
        "summary": analytics.summary,
        "charts": chart_views(analytics),
        "filters": _described(filters),
        "generated_at": timezone.now(),
        "data_as_of": analytics.as_of,
        "plotly_js": _inline_script(plotly_bundle().js.decode()),
        "page_js": _inline_script(_static_text("js/analytics.js")),
        "page_css": mark_safe(_static_text("css/analytics.css").replace("</style", "")),  # noqa: S308
    }
    return render_to_string("analytics/report.html", context)


def csv_files(analytics: Analytics) -> dict[str, bytes]:
    """`summary.csv` (metric, value) and `<table>.csv` per table, the engine's values as they
    are (full precision, ISO dates), so a spreadsheet sums to the page's figures."""
    files = {SUMMARY_NAME: _csv(["metric", "value"], list(analytics.summary.items()))}
    for name, table in analytics.tables.items():
        files[f"{name}.csv"] = _table_csv(table)
    return files


def csv_zip(analytics: Analytics, filters: ExampleFilters | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in csv_files(analytics).items():
            archive.writestr(name, data)
        if described := _described(filters):
            archive.writestr("filters.txt", "\n".join(f"{k}={v}" for k, v in described) + "\n")
    return buffer.getvalue()


def _table_csv(table: Table) -> bytes:
    return _csv(table.columns, table.rows)


def _csv(header: list[str], rows: list[Any]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[_csv_value(v) for v in row] for row in rows])
    return text.getvalue().encode()


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return "" if value is None else value


def _filters(filters: ExampleFilters | dict[str, Any] | None) -> ExampleFilters | None:
    if filters is None or isinstance(filters, ExampleFilters):
        return filters
    return ExampleFilters(**filters)


def _described(filters: ExampleFilters | None) -> list[tuple[str, Any]]:
    """The filters that narrow the report, for its heading."""
    if filters is None:
        return []
    return list(filters.model_dump(exclude_defaults=True, exclude={"sort"}).items())


def _static_text(path: str) -> str:
    found = finders.find(path)
    if not found:
        raise ExportError(f"static file {path} is missing", retryable=False)
    return Path(str(found)).read_text()


def _inline_script(text: str) -> SafeString:
    """Our own and the plotly package's code (never user data), made safe to sit inside
    <script>: nothing in it may close the element early."""
    return mark_safe(text.replace("</script", "<\\/script"))  # noqa: S308


def _write(path: Path, data: bytes) -> Path:
    """Write beside the target, then move into place: a reader never sees half a report."""
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_bytes(data)
    os.replace(scratch, path)
    return path
