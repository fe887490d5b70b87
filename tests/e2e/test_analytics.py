"""The analytics page in Chromium under the Content-Security-Policy: every chart drawn, nothing
blocked, a click on a bar opens the examples behind it; the HTML report opened from file://."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from collection.models import TrainingExample
from exports.analytics.charts import CHARTS
from exports.analytics.reports import export_analytics
from tests.e2e.conftest import log_in, screenshot
from tests.e2e.test_pages import Watch
from tests.e2e.test_pages import watch as watch  # the fixture
from tests.factories import make_example, make_execution, make_task, make_tool_call


@pytest.fixture
def dataset(db, reviewer, admin_user) -> None:
    """A small dataset with a spread: categories, difficulties, models, tools, failures,
    reviews by two people and a duplicate."""
    plan = [
        ("debugging", "easy", True, 0.92, "claude-sonnet-4-5"),
        ("debugging", "easy", False, 0.35, "claude-sonnet-4-5"),
        ("debugging", "hard", True, 0.71, "claude-opus-4-1"),
        ("debugging", "hard", False, 0.22, "claude-opus-4-1"),
        ("testing", "medium", True, 0.81, "claude-sonnet-4-5"),
        ("testing", "medium", True, 0.64, "claude-haiku-4-5"),
        ("refactoring", "expert", False, 0.41, "claude-opus-4-1"),
    ]
    for n, (category, difficulty, success, quality, model) in enumerate(plan):
        task = make_task(name=f"task {n}", category=category, difficulty=difficulty)
        execution = make_execution(
            task,
            success=success,
            model=model,
            num_turns=3 + n,
            cost_usd=0.02 * (n + 1),
            duration_ms=8_000 * (n + 1),
            error="" if success else "tests still fail",
            input_tokens=4_000 * (n + 1),
            output_tokens=900 * (n + 1),
            cache_read_input_tokens=12_000 * n,
            cache_creation_input_tokens=3_000,
        )
        make_tool_call(execution, 1, name="Bash", is_error=not success)
        make_tool_call(execution, 2, name="Read")
        example = make_example(
            execution, quality_score=quality, is_golden=success and quality >= 0.8
        )
        if n % 3 == 0:  # reviewed and validated, by turns
            example.reviewer = reviewer if n % 2 else admin_user
            example.reviewed_at = timezone.now()
            example.validated = True
            example.save()
    first, last = TrainingExample.objects.order_by("pk")[:1].get(), example
    TrainingExample.objects.filter(pk=last.pk).update(duplicate_of=first)


def drawn_charts(page: Page) -> int:
    """Charts plotly.js finished drawing (analytics.js marks them), each with its SVG."""
    page.wait_for_function(
        f"document.querySelectorAll('.chart-plot[data-drawn=true]').length === {len(CHARTS)}"
    )
    return page.evaluate(
        "[...document.querySelectorAll('.chart-plot[data-drawn=true]')]"
        ".filter((chart) => chart.querySelector('.main-svg .trace')).length"
    )


def test_the_page_draws_every_chart_under_the_policy(
    page,
    live_server,
    viewer,
    dataset,
    watch: Watch,  # noqa: F811 - the fixture
):
    log_in(page, live_server, viewer.username)
    watch.visit(live_server.url + "/analytics/")
    assert drawn_charts(page) == len(CHARTS)
    expect(page.locator("#total-examples")).to_have_text("7")
    watch.check()
    screenshot(page, "analytics")


def test_clicking_a_bar_opens_the_examples_behind_it(
    page,
    live_server,
    viewer,
    dataset,
    watch: Watch,  # noqa: F811 - the fixture
):
    log_in(page, live_server, viewer.username)
    watch.visit(live_server.url + "/analytics/?validated=false")
    drawn_charts(page)
    labels = page.evaluate(
        "JSON.parse(document.getElementById('figure-by_category_difficulty').textContent)"
        ".figure.data[0].x"
    )
    bar = page.locator("#chart-by_category_difficulty .bars .point").nth(
        labels.index("debugging · hard")
    )
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 4)
    page.wait_for_url("**/examples/?*")
    assert page.url.endswith("/examples/?validated=false&category=debugging&difficulty=hard")
    expected = TrainingExample.objects.filter(
        validated=False, execution__task__category="debugging", execution__task__difficulty="hard"
    ).count()
    assert expected == 1
    expect(page.locator("#match-count")).to_have_text(str(expected))


def test_the_html_report_opens_offline_with_every_chart(page, dataset, tmp_path: Path):
    report = export_analytics(tmp_path, format="html")
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    # Offline: any request that leaves the file fails the test.
    page.route("http*://**", lambda route: (problems.append(route.request.url), route.abort()))
    page.goto(report.as_uri())
    assert drawn_charts(page) == len(CHARTS)
    expect(page.locator("#total-examples")).to_have_text("7")
    assert problems == []
    screenshot(page, "analytics-report")
