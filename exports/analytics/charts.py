"""One Plotly chart per analytics table, as JSON-safe figure dicts for the page and the report.

    analytics = get_analytics(filters)
    for chart in chart_views(analytics):     # in CHARTS order, one per table the engine made
        chart.name, chart.title, chart.figure, chart.table

Every bar (or point) a user may click carries its table row's index as `customdata`, so the
browser finds `table.links[row]` (the examples-list filters for that row) whichever trace,
group or subplot the point sits in.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import plotly
import plotly.graph_objects as go
from django.http import QueryDict
from plotly.subplots import make_subplots

if TYPE_CHECKING:
    from exports.analytics.engine import Analytics, Table

# Context windows worth comparing an exported conversation against (tokens).
CONTEXT_LIMITS = {"8K": 8_000, "32K": 32_000, "128K": 128_000, "200K": 200_000}
COLORS = {
    "examples": "#4c6ef5",
    "passed": "#2f9e44",
    "golden": "#f08c00",
    "target": "#c92a2a",
    "quality": "#7048e8",
    "errors": "#e03131",
    "muted": "#868e96",
}
TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")
TOKEN_COLORS = ("#4c6ef5", "#2f9e44", "#74c0fc", "#ffa94d")
PLAIN = "plotly_white"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class ChartSpec:
    """How to draw one table: its figure builder and a line saying what to read in it."""

    build: Callable[[Table], go.Figure]
    caption: str


@dataclass(frozen=True)
class ChartView:
    """A table drawn: what the page and the report show side by side. With `query` (the
    page's filters, urlencoded) its bars and rows link to their examples; without (the
    offline report), nothing links."""

    name: str
    title: str
    caption: str
    figure: dict[str, Any]
    table: Table
    query: str | None = None

    @property
    def clickable(self) -> bool:
        return self.query is not None and any(self.table.links or [])

    @property
    def payload(self) -> dict[str, Any]:
        """What analytics.js reads: the figure, and each row's examples-list query."""
        links = [href or None for _, href in self.rows] if self.clickable else []
        return {"figure": self.figure, "links": links}

    @property
    def rows(self) -> list[tuple[list[str], str]]:
        """The table's rows as text, each with the examples-list query that shows its examples
        (the page's filters plus the row's own), or ""."""
        links: list[dict[str, str] | None] = [None] * len(self.table.rows)
        if self.table.links:
            links = [*self.table.links]
        return [
            ([cell(v) for v in row], _merged(self.query, link) if self.clickable and link else "")
            for row, link in zip(self.table.rows, links, strict=True)
        ]


def cell(value: Any) -> str:
    """A table cell as people read it: whole numbers grouped, fractions to four digits."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    number = float(value)
    if isinstance(value, numbers.Integral) or abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.4g}"


def _merged(query: str | None, link: dict[str, str]) -> str:
    params = QueryDict(query or "", mutable=True)
    for key, value in link.items():
        params[key] = value
    return params.urlencode()


def column(table: Table, name: str) -> list[Any]:
    index = table.columns.index(name)
    return [row[index] for row in table.rows]


def rows_index(table: Table) -> list[int]:
    """Each point's table row, read back by the browser on a click."""
    return list(range(len(table.rows)))


def _layout(fig: go.Figure, **extra: Any) -> go.Figure:
    extra = {"height": 340} | extra
    fig.update_layout(
        template=PLAIN,
        margin={"l": 56, "r": 16, "t": 36, "b": 48},
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        hoverlabel={"namelength": -1},
        font={"family": "system-ui, sans-serif", "size": 12},
        **extra,
    )
    return fig


def _bar(table: Table, x: str, y: str, name: str, color: str, **extra: Any) -> go.Bar:
    return go.Bar(
        x=column(table, x),
        y=column(table, y),
        name=name,
        marker_color=color,
        customdata=rows_index(table),
        **extra,
    )


def over_time(table: Table) -> go.Figure:
    days = column(table, "day")
    bar = _bar(
        table, "day", "examples", "examples", COLORS["examples"], width=[DAY_MS * 0.8] * len(days)
    )
    fig = go.Figure(bar)
    for name in ("passed", "golden"):
        fig.add_scatter(
            x=days,
            y=column(table, name),
            name=name,
            mode="lines+markers",
            line_color=COLORS[name],
            customdata=rows_index(table),
        )
    # At most about ten ticks, never finer than a day (a single day would tick in hours).
    span = (max(days) - min(days)).days + 1 if days else 1
    ticks = {"type": "date", "tickformat": "%b %-d, %Y", "dtick": DAY_MS * max(1, -(-span // 10))}
    return _layout(fig, xaxis=ticks, yaxis_title="examples")


def by_category_difficulty(table: Table) -> go.Figure:
    labels = [
        f"{c} · {d}"
        for c, d in zip(column(table, "category"), column(table, "difficulty"), strict=True)
    ]
    fig = go.Figure()
    fig.add_bar(
        x=labels,
        y=column(table, "success_rate"),
        name="success rate",
        marker_color=COLORS["passed"],
        customdata=rows_index(table),
        text=[f"n={n}" for n in column(table, "examples")],
        textposition="inside",
    )
    fig.add_scatter(
        x=labels,
        y=column(table, "avg_quality"),
        name="average quality",
        mode="markers",
        marker={"color": COLORS["quality"], "size": 9, "symbol": "diamond"},
        customdata=rows_index(table),
    )
    # The calibration target of each row's difficulty: a wide dash across its bar.
    fig.add_scatter(
        x=labels,
        y=column(table, "target_pass_rate"),
        name="target pass rate",
        mode="markers",
        marker={
            "symbol": "line-ew-open",
            "size": 30,
            "color": COLORS["target"],
            "line": {"width": 3, "color": COLORS["target"]},
        },
        hovertemplate="target %{y:.0%}<extra></extra>",
    )
    return _layout(
        fig, yaxis={"range": [0, 1.05], "tickformat": ".0%"}, xaxis_tickangle=-30, height=380
    )


def quality_histogram(table: Table) -> go.Figure:
    starts, ends = column(table, "bucket_start"), column(table, "bucket_end")
    fig = go.Figure(
        go.Bar(
            x=[(s + e) / 2 for s, e in zip(starts, ends, strict=True)],
            width=[(e - s) * 0.95 for s, e in zip(starts, ends, strict=True)],
            y=column(table, "examples"),
            name="examples",
            marker_color=COLORS["examples"],
            customdata=rows_index(table),
            hovertemplate="%{y} examples<extra></extra>",
        )
    )
    thresholds = [t for t in column(table, "golden_threshold") if t is not None]
    if thresholds:
        _vline(fig, thresholds[0], f"golden ≥ {thresholds[0]:g}", COLORS["golden"])
    return _layout(fig, xaxis={"title": "quality score", "range": [0, 1]}, yaxis_title="examples")


def _vline(fig: go.Figure, x: float, label: str, color: str) -> None:
    fig.add_shape(
        type="line",
        x0=x,
        x1=x,
        y0=0,
        y1=1,
        yref="paper",
        line={"color": color, "width": 2, "dash": "dash"},
    )
    fig.add_annotation(
        x=x, y=1, yref="paper", text=label, showarrow=False, xanchor="left", yanchor="top"
    )


def cost_by(key: str) -> Callable[[Table], go.Figure]:
    """Cost (total, and per example in the hover) beside tokens split into their four kinds."""

    def build(table: Table) -> go.Figure:
        fig = make_subplots(
            rows=1, cols=2, subplot_titles=("cost (USD)", "tokens"), horizontal_spacing=0.12
        )
        fig.add_trace(
            _bar(
                table,
                key,
                "cost_usd",
                "cost",
                COLORS["golden"],
                text=[f"${a:.3f} avg" for a in column(table, "avg_cost_usd")],
                textposition="outside",
                textangle=0,
                cliponaxis=False,
            ),
            row=1,
            col=1,
        )
        for name, color in zip(TOKEN_COLUMNS, TOKEN_COLORS, strict=True):
            label = name.removesuffix("_tokens").replace("_", " ")
            fig.add_trace(_bar(table, key, name, label, color), row=1, col=2)
        fig.update_layout(barmode="stack")
        fig.update_yaxes(rangemode="tozero")
        _layout(fig, height=380)
        # Subplot titles take the top: the legend goes under the (slanted) labels.
        return fig.update_layout(legend={"y": -0.45, "yanchor": "top"}, margin_b=40)

    return build


def token_lengths(table: Table) -> go.Figure:
    buckets = column(table, "bucket")  # labels such as "4K–8K", in order
    fig = go.Figure(
        _bar(
            table,
            "bucket",
            "examples",
            "examples",
            COLORS["examples"],
            hovertext=column(table, "context_limit_label"),
        )
    )
    # A context limit sits between the bucket it closes and the next one.
    for label in CONTEXT_LIMITS:
        ends = [i for i, b in enumerate(buckets) if str(b).upper().endswith(f"–{label}")]
        if ends:
            _vline(fig, ends[0] + 0.5, label, COLORS["target"])
    return _layout(
        fig,
        xaxis={"title": "estimated tokens per exported conversation", "type": "category"},
        yaxis_title="examples",
    )


def tool_usage(table: Table) -> go.Figure:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(_bar(table, "tool", "calls", "calls", COLORS["examples"]))
    fig.add_trace(_bar(table, "tool", "errors", "errors", COLORS["errors"]))
    fig.add_trace(
        go.Scatter(
            x=column(table, "tool"),
            y=column(table, "error_rate"),
            name="error rate",
            mode="markers",
            marker={"color": COLORS["target"], "size": 9, "symbol": "x"},
            customdata=rows_index(table),
        ),
        secondary_y=True,
    )
    fig.update_yaxes(title_text="calls", secondary_y=False)
    fig.update_yaxes(
        title_text="error rate", tickformat=".0%", rangemode="tozero", secondary_y=True
    )
    return _layout(fig, barmode="overlay")


def turns(table: Table) -> go.Figure:
    fig = go.Figure(_bar(table, "turns", "examples", "examples", COLORS["examples"]))
    return _layout(fig, xaxis_title="turns", yaxis_title="examples")


def duration(table: Table) -> go.Figure:
    """Buckets of unequal width (10 s to an hour), so drawn as categories named by their span."""
    starts = column(table, "bucket_seconds")
    ends = [*starts[1:], None]
    labels = [_span(s, e) for s, e in zip(starts, ends, strict=True)]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=column(table, "examples"),
            name="examples",
            marker_color=COLORS["examples"],
            customdata=rows_index(table),
        )
    )
    return _layout(fig, xaxis={"title": "duration", "type": "category"}, yaxis_title="examples")


def _span(start: float, end: float | None) -> str:
    return f"≥ {_seconds(start)}" if end is None else f"{_seconds(start)}–{_seconds(end)}"


def _seconds(value: float) -> str:
    if value >= 3600 and value % 3600 == 0:
        return f"{value // 3600:g}h"
    if value >= 60 and value % 60 == 0:
        return f"{value // 60:g}m"
    return f"{value:g}s"


def review_by_reviewer(table: Table) -> go.Figure:
    fig = go.Figure()
    for name, color in (
        ("reviewed", COLORS["examples"]),
        ("validated", COLORS["passed"]),
        ("golden", COLORS["golden"]),
        ("bad_steps", COLORS["errors"]),
    ):
        fig.add_trace(_bar(table, "reviewer", name, name.replace("_", " "), color))
    return _layout(fig, barmode="group", yaxis_title="examples")


def horizontal(y: str) -> Callable[[Table], go.Figure]:
    """Long labels (failure reasons) read best down the side."""

    def build(table: Table) -> go.Figure:
        fig = go.Figure(
            go.Bar(
                y=column(table, y),
                x=column(table, "examples"),
                orientation="h",
                marker_color=COLORS["errors"] if y == "reason" else COLORS["muted"],
                customdata=rows_index(table),
                name="examples",
            )
        )
        return _layout(fig, yaxis={"autorange": "reversed"}, xaxis_title="examples")

    return build


CHARTS: dict[str, ChartSpec] = {
    "over_time": ChartSpec(over_time, "Examples created per day; passed and golden among them."),
    "by_category_difficulty": ChartSpec(
        by_category_difficulty,
        "Success rate per category and difficulty; the red dash is the calibration target.",
    ),
    "quality_histogram": ChartSpec(
        quality_histogram, "Quality scores; the dashed line is the golden threshold."
    ),
    "cost_by_model": ChartSpec(cost_by("model"), "Cost and tokens (with cache) per model."),
    "cost_by_source": ChartSpec(cost_by("source"), "Cost and tokens (with cache) per source."),
    "token_lengths": ChartSpec(
        token_lengths, "Estimated tokens per exported conversation against context windows."
    ),
    "tool_usage": ChartSpec(tool_usage, "Tool calls, failed calls and each tool's error rate."),
    "turns": ChartSpec(turns, "Turns per session."),
    "duration": ChartSpec(duration, "Session duration (sessions that recorded one)."),
    "review_by_reviewer": ChartSpec(
        review_by_reviewer, "Review progress per reviewer: validated, golden, bad steps marked."
    ),
    "failure_reasons": ChartSpec(horizontal("reason"), "Why failed sessions failed."),
    "duplicates": ChartSpec(horizontal("kind"), "Duplicate examples by kind."),
}


def figure(table: Table) -> dict[str, Any]:
    """The table's chart as a plain JSON-safe dict (dates, decimals and numpy values encoded
    the way plotly encodes them)."""
    fig = CHARTS[table.name].build(table)
    return json.loads(fig.to_json(engine="json"))


def chart_views(analytics: Analytics, query: str | None = None) -> list[ChartView]:
    """Every table the engine made that has a chart, in CHARTS order."""
    return [_view(analytics.tables[name], query) for name in CHARTS if name in analytics.tables]


def _view(table: Table, query: str | None) -> ChartView:
    caption = CHARTS[table.name].caption
    return ChartView(table.name, table.title, caption, figure(table), table, query)


# --- plotly.js, as the plotly package ships it ---------------------------------------------------

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
# plotly.js's own style rules: an object literal of "X selector": "declarations" (X stands for a
# plot), which it would otherwise insert into a <style> element that a strict CSP refuses.
_RULES = re.compile(r'\{"X,X div":.*?\}', re.S)
_RULE = re.compile(r'"([^"]+)":(\'[^\']*\'|"[^"]*")')
# The id of the maplibre <style> element plotly.js adds on load unless an element with that id
# exists already (we draw no maps).
_MAPLIBRE_STYLE = re.compile(r'getElementById\("([0-9a-f]{64})"\)\)\{var e=document\.createElement')


@dataclass(frozen=True)
class PlotlyBundle:
    js: bytes
    digest: str  # of the file: the asset URLs' cache key
    css: str  # plotly.js's style rules as a stylesheet
    maplibre_style_id: str

    @property
    def version(self) -> str:
        return plotly.__version__


@cache
def plotly_bundle() -> PlotlyBundle:
    js = PLOTLY_JS.read_bytes()
    text = js.decode()
    found = _MAPLIBRE_STYLE.search(text)
    return PlotlyBundle(
        js=js,
        digest=hashlib.sha256(js).hexdigest()[:16],
        css=_stylesheet(text),
        maplibre_style_id=found.group(1) if found else "",
    )


def _stylesheet(text: str) -> str:
    rules = _RULES.search(text)
    if rules is None:
        return ""
    lines = []
    for selector, declarations in _RULE.findall(rules.group(0)):
        full = selector.replace("X", ".js-plotly-plot .plotly").replace("Y", ".plotly-notifier")
        lines.append(f"{full}{{{declarations[1:-1]}}}")
    return "\n".join(lines) + "\n"
