"""The review panel, step marks and the review queue: what each role may do, and bad input."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from collection.models import Message, ReviewEvent, StepMark, TrainingExample
from collection.queries import estimated_total
from collection.review import review_example
from tests.factories import make_example, make_execution, make_task

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def example(quality: float = 0.5, name: str = "Fix the parser", **kw) -> TrainingExample:
    task = make_task(name=name, category=kw.pop("category", "debugging"))
    return make_example(make_execution(task), quality_score=quality, **kw)


def step(ex: TrainingExample, seq: int = 1, text: str = "I will edit parser.py") -> Message:
    payload = {"type": "assistant", "message": {"content": [{"type": "text", "text": text}]}}
    return Message.objects.create(
        execution=ex.execution, seq=seq, uuid=f"{ex.pk}-{seq}", type="assistant", payload=payload
    )


def review_data(**kw) -> dict:
    return {"validator_notes": "", "tags": "", "quality_override": "", "override_reason": ""} | kw


def reviewed(ex: TrainingExample, user) -> None:
    review_example(ex, user, is_golden=False, validated=True, validator_notes="", tags=[])


# --- the review form ------------------------------------------------------------------------------


def test_a_reviewer_saves_a_review_without_javascript_and_goes_back(client, reviewer):
    ex = example()
    client.force_login(reviewer)
    data = review_data(is_golden="on", tags="a, b", next=f"/review/?example={ex.pk}")
    response = client.post(f"/examples/{ex.pk}/review/", data)
    assert response.status_code == 302 and response["Location"] == f"/review/?example={ex.pk}"
    stored = TrainingExample.objects.get(pk=ex.pk)
    assert (stored.is_golden, stored.tags, stored.reviewer) == (True, ["a", "b"], reviewer)
    fields = ReviewEvent.objects.values_list("field", "via", "user")
    assert set(fields) == {("is_golden", "page", reviewer.pk), ("tags", "page", reviewer.pk)}


def test_a_next_address_on_another_site_is_ignored(client, reviewer):
    ex = example()
    client.force_login(reviewer)
    response = client.post(f"/examples/{ex.pk}/review/", review_data(next="https://evil.test/"))
    assert response["Location"] == f"/examples/{ex.pk}/"


def test_an_htmx_review_answers_with_an_event_not_markup(client, reviewer):
    ex = example()
    client.force_login(reviewer)
    response = client.post(
        f"/examples/{ex.pk}/review/", review_data(validated="on", via="queue"), headers=HTMX
    )
    assert response.status_code == 204 and response.content == b""
    assert json.loads(response["HX-Trigger"]) == {"example-reviewed": {"id": ex.pk}}
    assert ReviewEvent.objects.get().via == "queue"


def test_the_panel_reloads_with_the_new_state_and_its_history(client, reviewer):
    ex = example()
    client.force_login(reviewer)
    client.post(f"/examples/{ex.pk}/review/", review_data(validator_notes="<b>x</b>"))
    panel = client.get(f"/examples/{ex.pk}/review/", {"via": "queue", "next": "/review/"})
    html = panel.content.decode()
    assert panel.status_code == 200 and html.lstrip().startswith('<section id="review-panel"')
    assert 'name="via" value="queue"' in html and 'name="next" value="/review/"' in html
    assert "reviewed by bob" in html
    assert '<span class="after">&lt;b&gt;x&lt;/b&gt;</span>' in html  # escaped, never markup


def test_an_override_without_a_reason_is_a_400_naming_the_field(client, reviewer):
    ex = example()
    client.force_login(reviewer)
    response = client.post(
        f"/examples/{ex.pk}/review/", review_data(quality_override="0.9"), headers=HTMX
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Say why you override the quality score." in html
    assert html.lstrip().startswith('<section id="review-panel"')
    assert TrainingExample.objects.get(pk=ex.pk).reviewed_at is None
    assert not ReviewEvent.objects.exists()


def test_an_override_out_of_range_is_a_400_on_the_queue_page_without_javascript(client, reviewer):
    ex = example()
    client.force_login(reviewer)
    data = review_data(quality_override="1.5", override_reason="great")
    response = client.post(f"/examples/{ex.pk}/review/", data)
    assert response.status_code == 400
    assert b"Ensure this value is less than or equal to 1." in response.content
    assert b"<html" in response.content and b"Not saved" in response.content


def test_an_override_with_a_reason_replaces_the_score(client, reviewer):
    ex = example(quality=0.3)
    client.force_login(reviewer)
    data = review_data(quality_override="0.85", override_reason="verifier missed the fix")
    client.post(f"/examples/{ex.pk}/review/", data, headers=HTMX)
    stored = TrainingExample.objects.get(pk=ex.pk)
    assert (stored.quality_score, stored.scored_quality) == (0.85, 0.3)
    panel = client.get(f"/examples/{ex.pk}/review/").content.decode()
    assert "overridden" in panel and "verifier missed the fix" in panel


def test_a_viewer_reads_the_panel_but_cannot_review(client, viewer):
    ex = example()
    client.force_login(viewer)
    panel = client.get(f"/examples/{ex.pk}/review/")
    assert panel.status_code == 200 and b"<form" not in panel.content
    assert client.post(f"/examples/{ex.pk}/review/", review_data()).status_code == 403
    assert TrainingExample.objects.get(pk=ex.pk).reviewed_at is None


def test_reviewing_a_missing_example_is_a_404(client, reviewer):
    client.force_login(reviewer)
    assert client.post("/examples/999/review/", review_data()).status_code == 404


# --- step marks -----------------------------------------------------------------------------------


def test_a_reviewer_marks_a_step_bad_with_a_comment(client, reviewer):
    ex = example()
    message = step(ex)
    client.force_login(reviewer)
    data = {"message": message.pk, "comment": " <i>wrong file</i> ", "action": "mark"}
    response = client.post(f"/examples/{ex.pk}/steps/", data, headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<div class="step-mark is-marked" id="step-mark-{message.pk}"')
    assert "&lt;i&gt;wrong file&lt;/i&gt;" in html and "Unmark" in html
    assert json.loads(response["HX-Trigger"]) == {"step-marked": {"id": ex.pk, "step": message.pk}}
    assert StepMark.objects.get().comment == "<i>wrong file</i>"


def test_a_reviewer_unmarks_a_step_without_javascript(client, reviewer):
    ex = example()
    message = step(ex)
    StepMark.objects.create(example=ex, message=message, created_by=reviewer)
    client.force_login(reviewer)
    data = {"message": message.pk, "action": "unmark"}
    response = client.post(f"/examples/{ex.pk}/steps/", data)
    assert response.status_code == 302
    assert response["Location"] == f"/examples/{ex.pk}/#step-{message.pk}"
    assert not StepMark.objects.exists()
    assert ReviewEvent.objects.get().after is None


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"message": "x", "action": "mark"}, "message: Enter a whole number."),
        ({"action": "mark"}, "message: This field is required."),
        ({"message": "1", "action": "delete"}, "action: Select a valid choice."),
        ({"message": "1", "action": "mark", "comment": "x" * 2001}, "comment: Ensure this value"),
    ],
)
def test_a_bad_step_mark_is_a_400_naming_the_field(client, reviewer, data, error):
    ex = example()
    client.force_login(reviewer)
    response = client.post(f"/examples/{ex.pk}/steps/", data)
    assert response.status_code == 400
    assert response.content.decode().startswith(error)


def test_a_step_of_another_trajectory_or_not_the_assistants_is_a_400(client, reviewer):
    ex, other = example(), example(name="Other")
    foreign = step(other)
    user_turn = Message.objects.create(
        execution=ex.execution, seq=2, uuid="u", type="user", payload={}
    )
    client.force_login(reviewer)
    for message in (foreign, user_turn):
        response = client.post(
            f"/examples/{ex.pk}/steps/", {"message": message.pk, "action": "mark"}
        )
        assert response.status_code == 400
        assert response.content.decode() == (
            f"message: {message.pk} is not an assistant step of example {ex.pk}'s trajectory"
        )
    assert not StepMark.objects.exists()


def test_a_viewer_cannot_mark_steps_and_get_is_not_allowed(client, viewer, reviewer):
    ex = example()
    message = step(ex)
    client.force_login(viewer)
    data = {"message": message.pk, "action": "mark"}
    assert client.post(f"/examples/{ex.pk}/steps/", data).status_code == 403
    client.force_login(reviewer)
    assert client.get(f"/examples/{ex.pk}/steps/").status_code == 405
    assert not StepMark.objects.exists()


# --- the queue ------------------------------------------------------------------------------------


def test_the_queue_shows_the_next_unreviewed_example_and_the_progress(client, reviewer):
    best, middle, worst = example(0.9, "Best"), example(0.6, "Middle"), example(0.2, "Worst")
    reviewed(best, reviewer)
    client.force_login(reviewer)
    page = client.get("/review/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<strong>1</strong> of 3 reviewed" in html
    assert f'<a href="/examples/{middle.pk}/">Middle</a></h2>' in html  # by quality
    assert f'id="queue-next" class="button primary" href="/review/?example={worst.pk}"' in html
    assert f'id="queue-prev" class="button" href="/review/?example={best.pk}"' in html


def test_the_whole_queue_of_a_big_table_counts_the_reviewed_from_their_index(
    client, reviewer, monkeypatch
):
    monkeypatch.setattr("collection.queries.ESTIMATE_FROM", 3)
    first, *_rest = [example(0.9 - n / 10, f"Task {n}") for n in range(4)]
    reviewed(first, reviewer)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the statistics autovacuum would have by now
            cursor.execute("ANALYZE collection_trainingexample")
        assert estimated_total() == 4  # the total is the table's estimate, not a count
    else:
        assert estimated_total() is None  # SQLite keeps none: counted
    client.force_login(reviewer)
    html = client.get("/review/").content.decode()
    about = "about " if connection.vendor == "postgresql" else ""  # an estimate says so
    assert f"<strong>1</strong> of {about}4 reviewed" in html


def test_the_queue_follows_the_lists_filter(client, reviewer):
    ex = example(0.4, "Cache", category="implementation")
    example(0.9, "Parser", category="debugging")
    other = example(0.3, "Index", category="implementation")
    client.force_login(reviewer)
    html = client.get("/review/", {"category": "implementation"}).content.decode()
    assert "<strong>0</strong> of 2 reviewed" in html and ">Cache</a>" in html
    assert f'href="/review/?category=implementation&amp;example={other.pk}"' in html
    assert 'id="queue-prev"' not in html  # the first of this filter
    assert f'name="next" value="/review/?category=implementation&amp;example={ex.pk}"' in html


def test_next_skips_reviewed_examples_and_comes_back_to_skipped_ones(client, reviewer):
    a, b, c = example(0.9, "A"), example(0.8, "B"), example(0.7, "C")
    reviewed(b, reviewer)
    client.force_login(reviewer)
    html = client.get("/review/", {"example": a.pk}).content.decode()
    assert f'id="queue-next" class="button primary" href="/review/?example={c.pk}"' in html
    html = client.get("/review/", {"example": c.pk}).content.decode()  # past the end: a again
    assert f'id="queue-next" class="button primary" href="/review/?example={a.pk}"' in html
    assert f'id="queue-prev" class="button" href="/review/?example={b.pk}"' in html


def test_a_given_example_is_shown_with_its_review_panel_and_steps(client, reviewer):
    ex = example(0.5, "Given")
    message = step(ex, text="Running the tests now")
    client.force_login(reviewer)
    html = client.get("/review/", {"example": ex.pk}).content.decode()
    assert ">Given</a>" in html and 'id="review-panel"' in html
    assert f'id="step-{message.pk}" data-step="{message.pk}"' in html
    assert "Running the tests now" in html and 'class="mark-form"' in html
    assert '<script src="/static/js/review.js" defer></script>' in html
    assert "<kbd>g</kbd>" in html and "<kbd>b</kbd>" in html


def test_when_everything_is_reviewed_the_queue_says_so(client, reviewer):
    reviewed(example(), reviewer)
    client.force_login(reviewer)
    html = client.get("/review/").content.decode()
    assert "Nothing left to review" in html and "<strong>1</strong> of 1 reviewed" in html


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"min_quality": "2"}, "min_quality: Input should be less than or equal to 1"),
        ({"example": "abc"}, "example: &#x27;abc&#x27; is not an example id"),
        ({"sort": "nope"}, "unknown sort &#x27;nope&#x27;"),
    ],
)
def test_a_bad_queue_query_is_a_400_naming_it(client, reviewer, params, error):
    client.force_login(reviewer)
    response = client.get("/review/", params)
    assert response.status_code == 400
    assert error in response.content.decode()


def test_an_unknown_example_in_the_queue_is_a_404(client, reviewer):
    client.force_login(reviewer)
    assert client.get("/review/", {"example": "999"}).status_code == 404


def test_a_viewer_sees_the_queue_read_only(client, viewer):
    ex = example()
    step(ex)
    client.force_login(viewer)
    page = client.get("/review/")
    assert page.status_code == 200
    assert b'class="review-form"' not in page.content and b'class="mark-form"' not in page.content
    assert b"<kbd>g</kbd>" not in page.content and b"<kbd>n</kbd>" in page.content


def test_the_queue_status_reloads_alone_for_htmx(client, reviewer):
    ex = example()
    client.force_login(reviewer)
    reviewed(ex, reviewer)
    headers = HTMX | {"HX-Target": "queue-status"}
    page = client.get("/review/", {"example": ex.pk}, headers=headers)
    html = page.content.decode()
    assert html.lstrip().startswith('<section id="queue-status"') and "<html" not in html
    assert "<strong>1</strong> of 1 reviewed" in html and "badge golden" not in html
    assert '<span class="badge validated">validated</span>' in html


def test_the_queue_needs_a_signed_in_user(client):
    response = client.get("/review/")
    assert response.status_code == 302 and "/login/" in response["Location"]
