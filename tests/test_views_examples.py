"""The dashboard, the example list, an example's page and its review form."""

from __future__ import annotations

import json

import pytest

from tests.factories import make_example, make_execution, make_task, make_tool_call

pytestmark = pytest.mark.django_db


def test_the_dashboard_counts_examples_golden_ones_and_cost(client, viewer):
    make_example(is_golden=True, quality_score=0.9)
    make_example(quality_score=0.5)
    make_example(make_execution(cost_usd=0.25), quality_score=0.4)
    client.force_login(viewer)
    page = client.get("/")
    assert page.status_code == 200
    assert b'<span class="value" id="stat-examples">3</span>' in page.content
    assert b'<span class="value" id="stat-golden">1</span>' in page.content
    assert b'<span class="value">0.60</span><span class="label">mean quality</span>' in page.content
    assert (
        b'<span class="value">$0.2700</span><span class="label">total cost</span>' in page.content
    )


def test_an_empty_dashboard_says_so_instead_of_a_mean(client, viewer):
    client.force_login(viewer)
    page = client.get("/")
    assert b'<span class="value">\xe2\x80\x93</span><span class="label">mean quality</span>' in (
        page.content
    )
    assert b"No training examples yet" in page.content


def test_the_example_list_shows_only_the_examples_that_match(client, viewer):
    make_example(make_execution(make_task(name="Fix the parser", category="debugging")))
    make_example(make_execution(make_task(name="Write a cache", category="implementation")))
    client.force_login(viewer)
    page = client.get("/examples/", {"category": "implementation"})
    assert page.status_code == 200
    assert b"Write a cache" in page.content and b"Fix the parser" not in page.content
    assert b"<html" in page.content


def test_an_htmx_request_gets_only_the_results_fragment(client, viewer):
    make_example(make_execution(make_task(name="Fix the parser")))
    client.force_login(viewer)
    page = client.get("/examples/", {"q": "parser"}, headers={"HX-Request": "true"})
    assert page.status_code == 200
    assert page.content.decode().lstrip().startswith('<section id="results">')
    assert b"Fix the parser" in page.content and b"<html" not in page.content


def test_a_bad_filter_is_a_400_that_names_the_field(client, viewer):
    client.force_login(viewer)
    page = client.get("/examples/", {"min_quality": "2"}, headers={"HX-Request": "true"})
    assert page.status_code == 400
    assert b'<p class="error">min_quality:' in page.content


def test_the_pager_keeps_the_filters_in_its_links(client, viewer):
    task = make_task(category="testing")
    for n in range(26):
        make_example(make_execution(task, session_id=f"s{n}"))
    client.force_login(viewer)
    first = client.get("/examples/", {"category": "testing"})
    assert b'href="?category=testing&amp;page=2">Next' in first.content
    second = client.get("/examples/", {"category": "testing", "page": "2"})
    assert b'href="?category=testing&amp;page=1">' in second.content
    assert b"Page 2 of 2" in second.content and b"Next" not in second.content


def test_the_example_page_shows_the_trajectory_and_a_reviewer_gets_the_form(client, reviewer):
    execution = make_execution(make_task(name="Fix the parser"))
    execution.append_message({"type": "assistant", "uuid": "u-1", "text": "<b>looking</b>"})
    make_tool_call(execution, 1, name="Grep")
    example = make_example(execution)
    client.force_login(reviewer)
    page = client.get(f"/examples/{example.pk}/")
    assert page.status_code == 200
    assert b"&lt;b&gt;looking&lt;/b&gt;" in page.content  # transcript text is escaped
    assert b"<td>Grep</td>" in page.content
    assert f'action="/examples/{example.pk}/review/"'.encode() in page.content


def test_a_viewer_sees_the_ruling_but_no_review_form(client, viewer):
    example = make_example(validator_notes="clean fix")
    client.force_login(viewer)
    page = client.get(f"/examples/{example.pk}/")
    assert b"clean fix" in page.content
    assert b"/review/" not in page.content


def test_a_missing_example_is_a_404(client, viewer):
    client.force_login(viewer)
    assert client.get("/examples/999/").status_code == 404


def test_an_htmx_review_answers_with_the_fragment_and_an_event(client, reviewer):
    example = make_example()
    client.force_login(reviewer)
    response = client.post(
        f"/examples/{example.pk}/review/",
        {"validated": "on", "validator_notes": "not golden", "tags": "b, a, b"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert json.loads(response["HX-Trigger"]) == {"example-reviewed": {"id": example.pk}}
    assert response.content.decode().lstrip().startswith('<section id="review"')
    assert b"Reviewed by bob" in response.content
    example.refresh_from_db()
    assert (example.validated, example.tags, example.reviewer) == (True, ["a", "b"], reviewer)


def test_an_invalid_review_is_a_400_that_changes_nothing(client, reviewer):
    example = make_example()
    client.force_login(reviewer)
    response = client.post(
        f"/examples/{example.pk}/review/", {"tags": "x" * 51}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 400
    assert b"is longer than 50 characters" in response.content
    assert "HX-Trigger" not in response
    example.refresh_from_db()
    assert example.reviewed_at is None


def test_a_review_without_htmx_redirects_to_the_example(client, reviewer):
    example = make_example()
    client.force_login(reviewer)
    response = client.post(f"/examples/{example.pk}/review/", {"is_golden": "on"})
    assert response.status_code == 302 and response["Location"] == f"/examples/{example.pk}/"
    example.refresh_from_db()
    assert example.is_golden and example.reviewed_at is not None


def test_a_review_is_only_ever_posted(client, reviewer):
    example = make_example()
    client.force_login(reviewer)
    assert client.get(f"/examples/{example.pk}/review/").status_code == 405


def test_the_list_filters_by_tag_and_sorts_by_a_column_from_the_url(client, viewer):
    task = make_task()
    cheap = make_example(make_execution(task, session_id="a", cost_usd=0.01), tags=["x"])
    dear = make_example(make_execution(task, session_id="b", cost_usd=0.5), tags=["x"])
    make_example(make_execution(task, session_id="c"), tags=["y"])
    client.force_login(viewer)
    page = client.get("/examples/?tag=x&sort=-cost")
    assert page.status_code == 200
    body = page.content.decode()
    assert body.index(f'id="example-{dear.pk}"') < body.index(f'id="example-{cheap.pk}"')
    assert body.count('id="example-') == 2
    # The Cost heading now sorts the other way; the others sort by themselves.
    assert '<a href="?tag=x&amp;sort=cost">Cost</a> ▼' in body
    assert '<a href="?tag=x&amp;sort=quality">Quality</a>' in body
    assert client.get("/examples/?sort=colour").status_code == 400


def test_the_list_says_whether_each_session_passed_and_a_rejected_one_looks_failed(client, viewer):
    task = make_task()
    passed = make_example(make_execution(task, session_id="a"))
    rejected = make_example(make_execution(task, session_id="b", success=False))
    client.force_login(viewer)
    body = client.get("/examples/").content.decode()
    row = body[body.index(f'id="example-{passed.pk}"') :]
    assert '<span class="badge status-completed">passed</span>' in row.split("</tr>")[0]
    row = body[body.index(f'id="example-{rejected.pk}"') :]
    rejected_badge = '<span class="badge status-completed status-failed">verifier failed</span>'
    assert rejected_badge in row.split("</tr>")[0]
