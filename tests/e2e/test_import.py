"""A reviewer imports a Claude Code transcript in the browser and reads the report."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.conftest import log_in
from trainingdash.broker import InProcessWorkers

FIXTURE = Path(__file__).parent.parent / "fixtures" / "transcripts" / "spotter__tool_heavy.jsonl"


def test_a_reviewer_imports_a_transcript_and_opens_the_session(page, live_server, reviewer):
    log_in(page, live_server, reviewer.username)
    page.click("nav >> text=Import")
    page.set_input_files("input[name=file]", str(FIXTURE))
    with InProcessWorkers(1):
        page.click("#import-form button[type=submit]")
        expect(page.locator("#import-status")).to_have_text("Succeeded", timeout=60_000)
    expect(page.locator("#import-imported")).to_have_text("1")
    expect(page.locator("#import-errors")).to_have_text("0")
    page.click("nav >> text=Examples")
    page.click("summary >> text=More filters")
    page.select_option("select[name=source]", "imported")
    expect(page.locator("#results .count")).to_contain_text("1 example ·")
    page.click("#results td a")
    expect(page.locator(".msg-assistant").first).to_be_visible()
    expect(page.locator(".tool .tool-name", has_text="Bash").first).to_be_visible()
