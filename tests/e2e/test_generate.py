"""An admin starts a batch in the browser and watches it finish (HTMX polling)."""

from __future__ import annotations

from playwright.sync_api import expect

from collection.models import GenerationBatch
from tests.e2e.conftest import log_in
from trainingdash.broker import InProcessWorkers


def test_an_admin_generates_a_batch_and_sees_it_finish(page, live_server, admin_user):
    log_in(page, live_server, admin_user.username)
    page.click("nav >> text=Generate")
    page.fill("input[name=examples_per_category]", "1")
    page.check("input[name=categories][value=debugging]")
    page.check("input[name=difficulties][value=easy]")
    with InProcessWorkers(1):
        page.click("#generate-form button[type=submit]")
        batch = GenerationBatch.objects.get()
        expect(page).to_have_url(live_server.url + f"/batches/{batch.pk}/")
        # The progress section polls every 2 s until the batch is done.
        expect(page.locator("#batch-finished")).to_have_text("1 / 1", timeout=90_000)
    expect(page.locator("#batch-status")).to_have_text("Succeeded")
    expect(page.locator("#batch-progress")).not_to_have_attribute("hx-trigger", "every 2s")
    # No seed given: a fresh one, shown so that the batch can be reproduced.
    batch.refresh_from_db()
    expect(page.locator("#batch-seed")).to_have_text(str(batch.params["seed"]))
    # Every session ran: nothing to resume, so no Resume button.
    expect(page.locator("#batch-progress button", has_text="Resume")).to_have_count(0)
    page.click("#batch-progress td a")  # the example's quality score links to it
    expect(page.locator(".turn").first).to_be_visible()
    expect(page.locator(".msg-assistant").first).to_be_visible()
