"""Finding examples in a browser: filters that update the rows and the URL, and a bulk ruling
over a whole filtered result (more rows than one page)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from collection.models import TrainingExample
from collection.search import index_example
from tests.e2e.conftest import log_in, screenshot
from tests.factories import make_example, make_execution, make_task, make_tool_call


def _world() -> None:
    """30 debugging sessions (more than a page), a few others, a searchable one."""
    debugging = make_task(name="Fix the date parser", category="debugging", difficulty="medium")
    for n in range(30):
        execution = make_execution(
            debugging, session_id=f"d{n}", cost_usd=0.01 * n, num_turns=n, model="claude-sonnet-4-5"
        )
        make_example(execution, quality_score=round(0.3 + n / 100, 2))
    tests = make_task(name="Write tests for the cache", category="testing", difficulty="hard")
    for n in range(4):
        execution = make_execution(tests, session_id=f"t{n}", model="claude-opus-4-1")
        if n == 0:
            make_tool_call(execution, 1, name="Bash", is_error=True)
        make_example(execution, quality_score=0.9, is_golden=n == 1)
    searchable = make_execution(tests, session_id="s", metadata={"prompt": "memoize the lookup"})
    index_example(make_example(searchable, quality_score=0.5))


def test_filters_change_the_rows_and_the_url(page: Page, live_server, viewer):
    _world()
    log_in(page, live_server, viewer.username)
    page.goto(live_server.url + "/examples/")
    expect(page.locator("#match-count")).to_have_text("35")
    page.select_option("select[name=category]", "testing")
    expect(page.locator("#match-count")).to_have_text("5")
    expect(page).to_have_url(re.compile(r"/examples/\?category=testing$"))
    expect(page.locator("tbody tr")).to_have_count(5)
    page.click("summary:has-text('More filters')")
    page.fill("input[name=tool_error]", "Bash")
    page.press("input[name=tool_error]", "Enter")
    expect(page.locator("#match-count")).to_have_text("1")
    expect(page).to_have_url(re.compile(r"category=testing&tool_error=Bash"))
    page.fill("input[name=tool_error]", "")
    page.press("input[name=tool_error]", "Enter")
    page.fill("input[name=q]", "memoize")
    expect(page.locator("#match-count")).to_have_text("1")
    expect(page.locator("tbody")).to_contain_text("Write tests for the cache")
    screenshot(page, "example-list-filtered")


def test_sorting_and_paging_keep_the_filters(page: Page, live_server, viewer):
    _world()
    log_in(page, live_server, viewer.username)
    page.goto(live_server.url + "/examples/?category=debugging")
    page.click("th a:has-text('Cost')")
    expect(page).to_have_url(re.compile(r"category=debugging&sort=cost"))
    expect(page.locator("tbody tr").first).to_contain_text("$0.0000")
    page.click("text=Last »")
    expect(page.locator("tbody tr")).to_have_count(25)
    expect(page.locator("tbody tr").last).to_contain_text("$0.2900")
    page.click("text=« First")
    expect(page.locator("tbody tr").first).to_contain_text("$0.0000")
    page.click("text=Next →")
    expect(page.locator("tbody tr")).to_have_count(5)
    # A filter changed now keeps the sort and starts from the first page.
    page.select_option("select[name=difficulty]", "medium")
    expect(page).to_have_url(re.compile(r"category=debugging&difficulty=medium&sort=cost$"))
    expect(page.locator("tbody tr")).to_have_count(25)


def test_a_reviewer_marks_a_whole_filtered_result_golden(page: Page, live_server, reviewer):
    _world()
    log_in(page, live_server, reviewer.username)
    page.goto(live_server.url + "/examples/?category=debugging")
    expect(page.locator("#match-count")).to_have_text("30")
    screenshot(page, "example-list")
    page.check("#select-all-matching")
    expect(page.locator("tbody input[name=ids]:checked")).to_have_count(25)
    page.select_option("select[name=action]", "golden")
    page.click("text=Apply to selected")
    expect(page.locator(".notice")).to_have_text("30 examples marked golden.")
    expect(page.locator("tbody td.flag:has-text('★')")).to_have_count(25)
    screenshot(page, "example-list-bulk-golden")
    assert TrainingExample.objects.filter(is_golden=True).count() == 31  # 30 + the golden one
    page.select_option("select[name=is_golden]", "true")
    expect(page.locator("#match-count")).to_have_text("30")  # golden among the debugging ones
