"""A walk over the main pages in Chromium under the Content-Security-Policy: nothing blocked, no
console errors; the menu on a phone; collecting a task from the browser and watching its job."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from collection.models import CollectionJob, GenerationBatch
from collection.task_templates import TaskTemplateLibrary
from tests.e2e.conftest import log_in, screenshot
from tests.factories import make_example, make_execution, make_task
from trainingdash.broker import InProcessWorkers

# Registered before any page script runs: the browser reports each thing the policy blocks.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


class Watch:
    """Everything that went wrong on the pages a test opened: CSP violations, console errors,
    uncaught exceptions and failed requests."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"{page.url}: {exc}"))
        page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        # The 404 page's own status is logged as an error by the browser: that one is expected.
        if message.type == "error" and "status of 404" not in message.text:
            self.problems.append(f"{self.page.url}: console: {message.text}")

    def _response(self, response) -> None:  # noqa: ANN001 - playwright's Response
        if response.status >= 400 and response.request.resource_type != "document":
            self.problems.append(f"{response.status} for {response.url}")

    def visit(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_load_state("networkidle")
        self.check()

    def check(self) -> None:
        violations = self.page.evaluate("window.__violations || []")
        self.problems += [f"{self.page.url}: CSP: {v}" for v in violations]


@pytest.fixture
def watch(page: Page) -> Iterator[Watch]:
    watch = Watch(page)
    yield watch
    assert watch.problems == []


@pytest.fixture
def some_data(db) -> dict[str, int]:
    example = make_example(make_execution(make_task(name="Fix the flaky test")), quality_score=0.8)
    job = CollectionJob.objects.create(task=example.execution.task, execution=example.execution)
    batch = GenerationBatch.objects.create(name="nightly", params={"seed": 1})
    return {"example": example.pk, "task": job.task_id, "job": job.pk, "batch": batch.pk}


def test_the_main_pages_work_under_the_policy(page, live_server, admin_user, some_data, watch):
    log_in(page, live_server, admin_user.username)
    expect(page.locator("h1")).to_have_text("Dashboard")
    pages = [
        "/",
        "/examples/",
        f"/examples/{some_data['example']}/",
        "/review/",
        "/tasks/",
        f"/tasks/{some_data['task']}/",
        "/tasks/new/",
        "/jobs/",
        f"/jobs/{some_data['job']}/",
        "/batches/",
        f"/batches/{some_data['batch']}/",
        "/templates/",
        "/imports/",
        "/exports/",
        "/analytics/",
        "/admin/",
        "/admin/collection/trainingexample/",
        f"/admin/collection/trainingexample/{some_data['example']}/change/",
        "/admin/collection/task/add/",
        "/no/such/page/",
    ]
    for path in pages:
        watch.visit(live_server.url + path)
    expect(page.locator("h1")).to_have_text("Nothing here")
    expect(page.locator("nav[aria-label=Main]")).to_be_visible()
    screenshot(page, "404")


def test_the_login_page_works_under_the_policy(page, live_server, watch):
    watch.visit(live_server.url + "/accounts/login/")
    watch.visit(live_server.url + "/admin/login/")


def test_the_menu_fits_a_phone_screen(page, live_server, admin_user, watch):
    page.set_viewport_size({"width": 375, "height": 740})
    log_in(page, live_server, admin_user.username)
    for path in ("/", "/tasks/", "/jobs/", "/batches/"):
        watch.visit(live_server.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
    links = page.locator("nav[aria-label=Main] a")
    assert links.count() == 11
    for i in range(links.count()):
        box = links.nth(i).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    page.goto(live_server.url + "/")
    screenshot(page, "phone-nav")
    page.click("nav >> text=Jobs")
    expect(page.locator("h1")).to_have_text("Collection jobs")


def test_a_user_without_a_role_is_told_to_ask_an_admin(page, live_server, django_user_model):
    django_user_model.objects.create_user("newcomer", password="password")
    make_example(make_execution(make_task(name="Secret task")))
    log_in(page, live_server, "newcomer")
    expect(page.locator("#no-role h1")).to_have_text("You're signed in, but have no role yet")
    expect(page.locator("text=Secret task")).to_have_count(0)
    screenshot(page, "no-role")
    page.click("text=Log out")
    expect(page.locator("h1")).to_have_text("Log in")


def test_an_admin_creates_a_task_collects_it_and_watches_the_job(
    page, live_server, admin_user, watch
):
    log_in(page, live_server, admin_user.username)
    page.click("nav >> text=Tasks")
    page.click("text=New task")
    page.fill("input[name=name]", "Say hello")
    page.fill("textarea[name=description]", "Reply with a short greeting.")
    page.fill("input[name=category]", "implementation")
    page.select_option("select[name=difficulty]", "easy")
    page.click("#task-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("Say hello")
    screenshot(page, "task-detail")
    watch.check()
    with InProcessWorkers(1):
        page.click("#collect-form button[type=submit]")
        job = CollectionJob.objects.get()
        expect(page).to_have_url(live_server.url + f"/jobs/{job.pk}/")
        # The progress section polls every 2 s until the job has finished.
        expect(page.locator("#job-status")).to_have_text("Succeeded", timeout=90_000)
    expect(page.locator("#job-progress")).not_to_have_attribute("hx-trigger", "every 2s")
    expect(page.locator("#job-result a").first).to_have_text("passed")
    screenshot(page, "job-detail")
    watch.check()
    page.click("nav >> text=Jobs")
    expect(page.locator("#job-table tbody tr")).to_have_count(1)
    screenshot(page, "jobs")
    page.click(f"#job-table a[href='/jobs/{job.pk}/']")
    page.click("#job-example")
    job.refresh_from_db()
    assert job.execution is not None
    expect(page).to_have_url(live_server.url + f"/examples/{job.execution.training_example.pk}/")
    watch.check()


def test_an_admin_cancels_a_queued_job_and_retries_it(page, live_server, admin_user, watch):
    template = TaskTemplateLibrary.load().templates(category="testing")[0]
    task = template.task_definition().get_or_create_task()
    job = CollectionJob.objects.create(task=task, spec=template.job_spec().model_dump())
    log_in(page, live_server, admin_user.username)
    page.goto(live_server.url + "/tasks/")
    screenshot(page, "tasks")
    page.goto(live_server.url + f"/jobs/{job.pk}/")
    page.locator("#job-progress button", has_text="Cancel").click()
    expect(page.locator("#job-status")).to_have_text("Cancelled")
    expect(page.locator("#job-error")).to_have_text("cancelled by a user")
    with InProcessWorkers(1):
        page.locator("#job-progress button", has_text="Retry").click()
        expect(page.locator("#job-status")).not_to_have_text("Cancelled")
        expect(page.locator("#job-status")).to_have_text("Succeeded", timeout=90_000)
    watch.check()
