from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import log_in
from tests.factories import make_example, make_execution, make_task


def test_a_viewer_logs_in_and_sees_the_dashboard_without_review_controls(page, live_server, viewer):
    example = make_example(make_execution(make_task(name="Fix the flaky test")), quality_score=0.9)
    log_in(page, live_server, viewer.username)
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("#stat-examples")).to_have_text("1")
    page.click("text=Fix the flaky test")
    expect(page).to_have_url(live_server.url + f"/examples/{example.pk}/")
    expect(page.locator("#review-panel button[type=submit]")).to_have_count(0)
    expect(page.locator("nav >> text=Admin")).to_have_count(0)


def test_a_reviewer_marks_an_example_golden_in_place(page, live_server, reviewer):
    example = make_example(quality_score=0.4)
    log_in(page, live_server, reviewer.username)
    page.goto(live_server.url + f"/examples/{example.pk}/")
    page.check("input[name=is_golden]")
    page.fill("input[name=tags]", "clean, python")
    page.click("#review-panel button[type=submit]")
    expect(page.locator("#review-state")).to_contain_text("reviewed by bob")
    example.refresh_from_db()
    assert example.is_golden and example.tags == ["clean", "python"]


def test_a_wrong_password_is_refused(page, live_server, viewer):
    log_in(page, live_server, viewer.username, "wrong")
    expect(page.locator(".error")).to_contain_text("didn't match")
