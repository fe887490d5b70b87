"""An admin exports the example list's current filter, watches the job and downloads the zip."""

from __future__ import annotations

import re
import zipfile

import orjson
import pytest
from playwright.sync_api import expect

from collection.models import TaskStatus
from exports.models import ExportJob
from tests.e2e.conftest import log_in, screenshot
from tests.factories import make_example, make_execution, make_task, make_trajectory
from trainingdash.broker import InProcessWorkers


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"


def sessions(n: int, category: str) -> None:
    task = make_task(name=f"Fix the {category} suite", category=category)
    for _ in range(n):
        make_example(make_trajectory(make_execution(task, status=TaskStatus.IN_PROGRESS)))


def test_an_admin_exports_the_current_filter_and_downloads_the_bundle(
    page, live_server, admin_user, tmp_path
):
    sessions(3, "debugging")
    sessions(2, "testing")
    log_in(page, live_server, admin_user.username)
    page.goto(live_server.url + "/examples/")  # waits for the page (and htmx) to load
    expect(page.locator("#match-count")).to_have_text("5")
    page.select_option("select[name=category]", "debugging")
    expect(page).to_have_url(re.compile(r"/examples/\?category=debugging$"))
    expect(page.locator("#match-count")).to_have_text("3")

    control = page.locator("#export-control")
    control.locator("select[name=format]").select_option("jsonl")
    expect(control.locator("select[name=scope]")).to_have_value("filter")
    screenshot(page, "exports-control")
    with InProcessWorkers(1):
        control.locator("#export-button").click()
        expect(page).to_have_url(re.compile(r"/exports/\d+/$"))
        expect(page.locator("#export-status")).to_have_text("Succeeded", timeout=60_000)
    expect(page.locator("#export-written")).to_have_text("3")
    job = ExportJob.objects.get()
    assert page.url == f"{live_server.url}/exports/{job.pk}/"
    expect(page.locator("#export-download")).to_be_visible()
    screenshot(page, "exports")

    with page.expect_download() as waiting:
        page.click("#export-download")
    bundle = tmp_path / "bundle.zip"
    waiting.value.save_as(bundle)
    assert waiting.value.suggested_filename == f"export-{job.pk}-jsonl.zip"
    with zipfile.ZipFile(bundle) as archive:
        assert sorted(archive.namelist()) == ["README.md", "data.jsonl", "manifest.json"]
        manifest = orjson.loads(archive.read("manifest.json"))
        rows = archive.read("data.jsonl").splitlines()
    assert manifest["filters"] == {"category": "debugging"}
    assert len(rows) == 3 and all(orjson.loads(r)["messages"] for r in rows)

    page.click("nav >> text=Exports")
    row = page.locator("#export-list tbody tr").first
    expect(row).to_contain_text("category=debugging")
    expect(row).to_contain_text(admin_user.username)
    expect(row.locator("a.download")).to_have_attribute("href", f"/exports/{job.pk}/download/")
    screenshot(page, "exports-list")
