"""The dashboard, the example list and its bulk actions (the example page: test_views_trajectories,
its review: test_views_review)."""

from __future__ import annotations

import json

import pytest

from collection.models import ReviewEvent, TrainingExample
from collection.search import index_example
from tests.factories import make_example, make_execution, make_task

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
    index_example(make_example(make_execution(make_task(name="Fix the parser"))))
    client.force_login(viewer)
    page = client.get("/examples/", {"q": "parser"}, headers={"HX-Request": "true"})
    assert page.status_code == 200
    assert page.content.decode().lstrip().startswith('<section id="results"')
    assert b"Fix the parser" in page.content and b"<html" not in page.content


def test_a_bad_filter_is_a_400_that_names_the_field(client, viewer):
    client.force_login(viewer)
    page = client.get("/examples/", {"min_quality": "2"}, headers={"HX-Request": "true"})
    assert page.status_code == 400
    assert b'<p class="error" role="alert">min_quality:' in page.content


def test_the_pager_keeps_the_filters_in_its_links(client, viewer):
    task = make_task(category="testing")
    examples = [make_example(make_execution(task, session_id=f"s{n}")) for n in range(26)]
    newest_first = sorted(examples, key=lambda e: -e.pk)  # equal quality: by id, descending
    client.force_login(viewer)
    first = client.get("/examples/", {"category": "testing"}).content.decode()
    after = newest_first[24].pk
    assert f'href="?category=testing&amp;after={after}" hx-get' in first
    assert 'href="?category=testing&amp;last=1"' in first and "Previous" not in first
    second = client.get("/examples/", {"category": "testing", "after": after}).content.decode()
    assert second.count('<tr id="example-') == 1
    assert f'id="example-{newest_first[25].pk}"' in second
    assert f'href="?category=testing&amp;before={newest_first[25].pk}"' in second
    assert "Next" not in second


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
    assert (
        '<a href="?tag=x&amp;sort=cost" hx-get="?tag=x&amp;sort=cost" hx-push-url="true">Cost</a> ▼'
        in body
    )
    assert '<a href="?tag=x&amp;sort=quality"' in body
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


# --- the list at scale, its filters from the URL, bulk actions -----------------------------------


def _many(n: int, **task_fields: object) -> list[TrainingExample]:
    task = make_task(**task_fields)
    return [make_example(make_execution(task, session_id=f"s{i}")) for i in range(n)]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "category=debugging&min_cost=0&sort=-cost",
        "q=fix&sort=task",
        "tool=Bash&tool_error=any&bad_steps=false&reviewer=bob&model=m&tag=x",
        "last=1&sort=turns",
    ],
)
def test_the_list_runs_as_many_queries_for_60_rows_as_for_5(
    client, reviewer, django_assert_max_num_queries, query
):
    client.force_login(reviewer)
    _many(5)
    client.get(f"/examples/?{query}")  # warm the session and permission caches

    def queries_for_one_page() -> int:
        with django_assert_max_num_queries(12) as captured:
            assert client.get(f"/examples/?{query}").status_code == 200
        return len(captured)

    few = queries_for_one_page()
    _many(55, name="More")
    assert queries_for_one_page() == few


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("min_cost=-1", "min_cost: Input should be greater than or equal to 0"),
        ("max_turns=many", "max_turns: Input should be a valid integer"),
        ("created_from=yesterday", "created_from: Input should be a valid date"),
        ("bad_steps=perhaps", "bad_steps: Input should be a valid boolean"),
        ("min_turns=9&max_turns=3", "min_turns is above max_turns"),
        ("after=abc", "after: Input should be a valid integer"),
        ("colour=red", "colour: Extra inputs are not permitted"),
    ],
)
def test_a_bad_filter_value_is_a_400_naming_the_field(client, viewer, query, message):
    client.force_login(viewer)
    response = client.get(f"/examples/?{query}")
    assert response.status_code == 400
    assert message in response.content.decode()


def test_every_filter_is_read_back_into_the_form_from_the_url(client, viewer):
    client.force_login(viewer)
    query = (
        "q=parser&model=opus&tool=Bash&tool_error=any&min_cost=0.5&max_turns=9"
        "&created_from=2025-01-02&bad_steps=true&sort=-cost"
    )
    body = client.get(f"/examples/?{query}").content.decode()
    for html in [
        'name="q" value="parser"',
        'name="model" value="opus"',
        'name="tool" list="known-tools" value="Bash"',
        'name="tool_error" list="known-tools-any" value="any"',
        'name="min_cost" min="0" step="any" value="0.5"',
        'name="max_turns" min="0" step="1" value="9"',
        'name="created_from" value="2025-01-02"',
        '<option value="true" selected>Has bad steps</option>',
        'name="sort" form="filters" value="-cost"',
    ]:
        assert html in body
    assert '<details class="more-filters" open>' in body


def test_a_viewer_sees_no_bulk_controls_and_may_not_post(client, viewer):
    example = make_example()
    client.force_login(viewer)
    body = client.get("/examples/").content.decode()
    assert 'name="ids"' not in body and "collection-example-bulk" not in body
    assert "/examples/bulk/" not in body
    response = client.post("/examples/bulk/", {"action": "golden", "ids": [example.pk]})
    assert response.status_code == 403
    example.refresh_from_db()
    assert not example.is_golden


def test_a_reviewer_gets_check_boxes_and_the_bulk_form(client, reviewer):
    example = make_example()
    client.force_login(reviewer)
    body = client.get("/examples/?category=debugging").content.decode()
    assert f'name="ids" value="{example.pk}"' in body
    assert 'action="/examples/bulk/"' in body
    assert 'name="query" value="category=debugging"' in body


def test_bulk_golden_over_all_matching_reaches_rows_beyond_the_page(client, reviewer):
    matching = _many(30, category="testing")
    other = make_example(make_execution(make_task(category="debugging"), session_id="x"))
    client.force_login(reviewer)
    response = client.post(
        "/examples/bulk/",
        {"action": "golden", "select": "all", "query": "category=testing"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert json.loads(response["HX-Trigger"]) == {"examples-changed": {"action": "golden"}}
    assert "30 examples marked golden." in response.content.decode()
    assert response.content.decode().count("★") == 25  # the page, re-rendered
    golden = set(TrainingExample.objects.filter(is_golden=True).values_list("pk", flat=True))
    assert golden == {e.pk for e in matching}
    assert other.pk not in golden
    assert ReviewEvent.objects.filter(via="bulk", field="is_golden").count() == 30


def test_bulk_actions_on_checked_rows_validate_and_tag(client, reviewer):
    first, second, third = _many(3)
    client.force_login(reviewer)
    ids = [first.pk, second.pk]
    response = client.post("/examples/bulk/", {"action": "validate", "ids": ids})
    assert response.status_code == 302 and response["Location"] == "/examples/?"
    client.post("/examples/bulk/", {"action": "tag", "ids": ids, "tags": "flaky, edge"})
    rows = TrainingExample.objects.order_by("pk")
    assert [(e.validated, e.tags) for e in rows] == [
        (True, ["edge", "flaky"]),
        (True, ["edge", "flaky"]),
        (False, []),
    ]
    client.post("/examples/bulk/", {"action": "untag", "ids": [first.pk], "tags": "edge"})
    first.refresh_from_db()
    assert first.tags == ["flaky"]
    assert third.reviewer is None


def test_bulk_rescore_of_a_filtered_result(client, reviewer):
    examples = _many(3, category="testing")
    TrainingExample.objects.update(quality_score=0.01)
    client.force_login(reviewer)
    response = client.post(
        "/examples/bulk/",
        {"action": "rescore", "select": "all", "query": "category=testing"},
        headers={"HX-Request": "true"},
    )
    assert "3 examples rescored." in response.content.decode()
    scores = set(TrainingExample.objects.values_list("quality_score", flat=True))
    assert scores != {0.01} and len(examples) == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "golden"}, "Select some examples first"),
        ({"action": "tag", "ids": ["1"]}, "tags: name at least one tag"),
        ({"action": "explode", "ids": ["1"]}, "action: Input should be"),
        ({"action": "golden", "select": "all", "query": "min_quality=7"}, "min_quality:"),
    ],
)
def test_a_bulk_request_that_cannot_be_done_is_a_400_that_says_why(client, reviewer, data, message):
    make_example()
    client.force_login(reviewer)
    response = client.post("/examples/bulk/", data, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not TrainingExample.objects.filter(is_golden=True).exists()


def test_bulk_is_only_ever_posted(client, reviewer):
    client.force_login(reviewer)
    assert client.get("/examples/bulk/").status_code == 405


def test_the_dashboard_table_has_no_check_boxes(client, reviewer):
    make_example()
    client.force_login(reviewer)
    assert 'name="ids"' not in client.get("/").content.decode()


def test_the_list_links_to_reviewing_what_it_shows(client, reviewer):
    make_example(make_execution(make_task(category="testing")))
    client.force_login(reviewer)
    page = client.get("/examples/", {"category": "testing", "last": "1"})
    assert 'href="/review/?category=testing">Review these' in page.text
