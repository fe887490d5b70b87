"""Reviewing in Chromium: the queue by keyboard (golden, validate, next, previous, mark a step)
and a bad step with a comment and a quality override on the example page; screenshots of both.
Both walks also check that the page broke no Content-Security-Policy rule and logged no error."""

from __future__ import annotations

from playwright.sync_api import ConsoleMessage, Page, expect

from collection.models import ReviewEvent, StepMark, TrainingExample
from tests.e2e.conftest import log_in, screenshot
from tests.factories import make_example, make_execution, make_task, make_trajectory

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


def examples(*qualities: float) -> list[TrainingExample]:
    made = []
    for n, quality in enumerate(qualities):
        task = make_task(name=f"Fix failing test {n + 1}")
        execution = make_trajectory(make_execution(task, session_id=f"s-{n}"), turns=2)
        made.append(make_example(execution, quality_score=quality))
    return made


def watch(page: Page) -> list[str]:
    problems: list[str] = []
    page.add_init_script(RECORD_VIOLATIONS)

    def console(message: ConsoleMessage) -> None:
        # A form with errors answers 400 on purpose; the browser logs that status.
        if message.type == "error" and "status of 400" not in message.text:
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return problems


def settled(page: Page) -> None:
    """No reload in flight: a screenshot hides carets with a style attribute, which htmx's
    settling would copy onto a swapped-in input (and the CSP would refuse)."""
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)


def no_problems(page: Page, problems: list[str]) -> None:
    assert page.evaluate("window.__violations") == []
    assert problems == []


def test_a_reviewer_works_through_the_queue_by_keyboard(page, live_server, reviewer):
    first, second, third = examples(0.9, 0.6, 0.3)
    problems = watch(page)
    log_in(page, live_server, reviewer.username)
    page.goto(f"{live_server.url}/review/")
    progress, state = page.locator("#queue-progress-text"), page.locator("#queue-example-state")
    expect(progress).to_have_text("0 of 3 reviewed")
    expect(page.locator(".queue-title")).to_have_text("Fix failing test 1")

    page.keyboard.press("g")
    expect(state.locator(".badge.golden")).to_be_visible()
    expect(progress).to_have_text("1 of 3 reviewed")
    page.keyboard.press("v")
    expect(state.locator(".badge.validated")).to_be_visible()
    expect(page.locator("#review-history li")).to_have_count(2)
    expect(page.locator("#review-history li").first).to_contain_text("validated")

    page.keyboard.press("n")
    expect(page).to_have_url(f"{live_server.url}/review/?example={second.pk}")
    expect(page.locator(".queue-title")).to_have_text("Fix failing test 2")
    expect(state.locator(".badge.unreviewed")).to_be_visible()

    # j picks the first step, b opens its comment box; Enter marks it.
    page.keyboard.press("j")
    current = page.locator(".step.is-current")
    expect(current).to_have_count(1)
    page.keyboard.press("b")
    comment = current.locator("input[name=comment]")
    expect(comment).to_be_focused()
    comment.fill("ran the tests on the wrong file")
    comment.press("Enter")
    expect(current.locator(".badge.bad-step")).to_be_visible()
    expect(current.locator(".step-comment")).to_have_text("ran the tests on the wrong file")
    page.locator("body").click(position={"x": 5, "y": 5})  # leave the form: keys act again
    page.keyboard.press("v")
    expect(progress).to_have_text("2 of 3 reviewed")
    expect(page.locator("#review-history li")).to_have_count(2)
    settled(page)
    screenshot(page, "review-queue")

    page.keyboard.press("p")
    expect(page).to_have_url(f"{live_server.url}/review/?example={first.pk}")
    expect(page.locator(".queue-title")).to_have_text("Fix failing test 1")
    page.keyboard.press("n")
    expect(page).to_have_url(f"{live_server.url}/review/?example={third.pk}")

    assert set(TrainingExample.objects.values_list("pk", "is_golden", "validated")) == {
        (first.pk, True, True),
        (second.pk, False, True),
        (third.pk, False, False),
    }
    assert set(ReviewEvent.objects.values_list("via", flat=True)) == {"queue"}
    assert StepMark.objects.get().example == second
    no_problems(page, problems)


def test_a_reviewer_marks_a_bad_step_and_overrides_the_quality_on_the_example_page(
    page, live_server, reviewer
):
    [example] = examples(0.5)
    step = page.locator(".step").nth(1)
    problems = watch(page)
    log_in(page, live_server, reviewer.username)
    page.goto(f"{live_server.url}/examples/{example.pk}/")

    step.locator("summary", has_text="Mark bad step").click()
    step.locator("input[name=comment]").fill("should have read the test first")
    step.locator("button", has_text="Mark bad").click()
    expect(step.locator(".badge.bad-step")).to_be_visible()
    expect(step.locator(".step-comment")).to_have_text("should have read the test first")

    panel = page.locator("#review-panel")
    panel.locator("input[name=quality_override]").fill("0.2")
    panel.locator("button", has_text="Save review").click()
    expect(panel.locator("#id_override_reason + .errorlist, .errorlist")).to_contain_text(
        "Say why you override the quality score."
    )
    panel.locator("textarea[name=override_reason]").fill("the fix only silences the test")
    panel.locator("input[name=tags]").fill("silenced-test, needs-second-look")
    panel.locator("button", has_text="Save review").click()
    expect(panel.locator("#review-quality")).to_have_text("0.20")
    expect(panel.locator(".badge.override")).to_be_visible()
    expect(panel.locator("#review-history")).to_contain_text("the fix only silences the test")
    expect(panel.locator("#review-history")).to_contain_text("bad step")
    page.set_viewport_size({"width": 1280, "height": 1300})  # the sticky panel, whole
    settled(page)
    screenshot(page, "example-review-panel")

    stored = TrainingExample.objects.get(pk=example.pk)
    assert (stored.quality_score, stored.scored_quality) == (0.2, 0.5)
    assert stored.tags == ["needs-second-look", "silenced-test"]
    assert StepMark.objects.get().comment == "should have read the test first"
    no_problems(page, problems)
