"""Chart specs: one per engine table, JSON-safe figures, clickable points carrying their row,
the calibration targets, the golden threshold and the context limits drawn in."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from exports.analytics.charts import CHARTS, CONTEXT_LIMITS, cell, chart_views, figure
from exports.analytics.engine import Analytics, Table

ENGINE_TABLES = {
    "over_time", "by_category_difficulty", "quality_histogram", "cost_by_model",
    "cost_by_source", "token_lengths", "tool_usage", "turns", "duration",
    "review_by_reviewer", "failure_reasons", "duplicates",
}  # fmt: skip


def by_category() -> Table:
    rows = [("debugging", "easy", 4, 0.75, 0.7, 0.88), ("debugging", "hard", 2, 0.5, 0.6, 0.42)]
    links = [{"category": "debugging", "difficulty": d} for d in ("easy", "hard")]
    columns = ["category", "difficulty", "examples", "success_rate", "avg_quality"]
    return Table("by_category_difficulty", "t", [*columns, "target_pass_rate"], rows, links)


def test_there_is_one_chart_per_engine_table():
    assert set(CHARTS) == ENGINE_TABLES


def test_figures_are_plain_json_whatever_the_engine_returns():
    table = Table("over_time", "t", ["day", "examples", "passed", "golden"], [
        (date(2025, 1, 2), 3, Decimal("2"), 1)
    ])  # fmt: skip
    fig = figure(table)
    assert json.loads(json.dumps(fig)) == fig
    assert fig["data"][0]["x"] == ["2025-01-02"]


def test_every_bar_carries_its_table_row_for_the_click():
    data = figure(by_category())["data"]
    assert data[0]["type"] == "bar"
    assert data[0]["customdata"] == [0, 1]


def test_the_calibration_target_is_drawn_per_row():
    target = next(t for t in figure(by_category())["data"] if t["name"] == "target pass rate")
    assert target["y"] == [0.88, 0.42]
    assert target["marker"]["symbol"] == "line-ew-open"


def test_the_golden_threshold_is_a_vertical_line():
    rows = [(b / 20, (b + 1) / 20, b, 0.8) for b in range(20)]
    columns = ["bucket_start", "bucket_end", "examples", "golden_threshold"]
    fig = figure(Table("quality_histogram", "q", columns, rows, None))
    (line,) = fig["layout"]["shapes"]
    assert (line["x0"], line["x1"], line["yref"]) == (0.8, 0.8, "paper")


def test_context_limits_sit_after_the_bucket_they_close():
    buckets = ["0–1K", "1K–8K", "8K–32K", "32K–128K", "128K–200K", "> 200K"]
    rows = [(b, 1, "fits") for b in buckets]
    columns = ["bucket", "examples", "context_limit_label"]
    fig = figure(Table("token_lengths", "t", columns, rows, None))
    assert [s["x0"] for s in fig["layout"]["shapes"]] == [1.5, 2.5, 3.5, 4.5]
    assert [a["text"] for a in fig["layout"]["annotations"]] == list(CONTEXT_LIMITS)


def test_rows_link_to_the_list_with_the_pages_filters_and_their_own():
    analytics = Analytics({"total_examples": 6}, {"by_category_difficulty": by_category()})
    (view,) = chart_views(analytics, "validated=true")
    assert view.clickable
    assert view.rows[1] == (
        ["debugging", "hard", "2", "0.5", "0.6", "0.42"],
        "validated=true&category=debugging&difficulty=hard",
    )
    assert view.payload["links"][0] == "validated=true&category=debugging&difficulty=easy"


def test_the_offline_report_links_nothing():
    analytics = Analytics({"total_examples": 6}, {"by_category_difficulty": by_category()})
    (view,) = chart_views(analytics)
    assert not view.clickable
    assert view.payload["links"] == []
    assert {href for _, href in view.rows} == {""}


def test_cells_read_as_numbers_people_expect():
    assert [cell(v) for v in (None, 3, 12345, 0.123456, 1234.5, "x", True)] == [
        "–", "3", "12,345", "0.1235", "1,234", "x", "True",
    ]  # fmt: skip
