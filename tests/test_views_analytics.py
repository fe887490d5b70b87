"""The analytics page: figures equal to ORM counts, the examples list's filters, freshness after
a change (and, over a big snapshot, a background refresh no load waits for), click-through
links, downloads, and plotly.js served from the plotly package."""

from __future__ import annotations

import csv
import fcntl
import gzip
import io
import json
import re
import signal
import zipfile
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from collection.models import TrainingExample
from exports.analytics import freshness
from exports.analytics.charts import CHARTS, PLOTLY_JS, plotly_bundle
from exports.analytics.snapshot import snapshot_dir
from tests.factories import make_example, make_execution, make_task, make_tool_call

pytestmark = pytest.mark.django_db


def make_world() -> list[TrainingExample]:
    """Five examples over two categories and three difficulties, one with a failing tool."""
    debugging_easy = make_task(name="a", category="debugging", difficulty="easy")
    debugging_hard = make_task(name="b", category="debugging", difficulty="hard")
    testing = make_task(name="c", category="testing", difficulty="medium")
    examples = [
        make_example(make_execution(debugging_easy), quality_score=0.9, is_golden=True),
        make_example(make_execution(debugging_easy, success=False), quality_score=0.3),
        make_example(make_execution(debugging_hard, cost_usd=0.5), quality_score=0.6),
        make_example(make_execution(testing, model="claude-x"), quality_score=0.7),
        make_example(make_execution(testing, success=False), quality_score=0.2),
    ]
    make_tool_call(examples[1].execution, 1, name="Bash", is_error=True)
    make_tool_call(examples[1].execution, 2, name="Read")
    return examples


def page(client: Client, **params: str) -> Any:
    response = client.get(reverse("analytics-index"), params)
    assert response.status_code == 200, response.content[:500]
    return response


def payloads(response: Any) -> dict[str, dict[str, Any]]:
    """Each chart's JSON block as the page's script reads it."""
    html = response.content.decode()
    found = re.findall(r'<script id="figure-(\w+)" type="application/json">(.*?)</script>', html)
    return {name: json.loads(body) for name, body in found}


def test_every_chart_is_on_the_page_with_its_table(client, viewer):
    make_world()
    client.force_login(viewer)
    response = page(client)
    html = response.content.decode()
    assert set(payloads(response)) == set(CHARTS)
    for name in CHARTS:
        section = html[html.index(f'id="chart-{name}"') :].split("</section>", 1)[0]
        assert f'data-figure="figure-{name}"' in section
        assert "<table>" in section or "No data for these filters." in section


def test_the_summary_counts_match_the_orm(client, viewer):
    examples = make_world()
    client.force_login(viewer)
    summary = page(client).context["summary"]
    assert summary["total_examples"] == TrainingExample.objects.count() == len(examples)
    assert summary["golden_examples"] == TrainingExample.objects.filter(is_golden=True).count()
    passed = TrainingExample.objects.filter(execution__success=True).count()
    assert summary["success_rate"] == pytest.approx(passed / len(examples))


def test_bars_per_category_and_difficulty_match_the_orm(client, viewer):
    make_world()
    client.force_login(viewer)
    figure = payloads(page(client))["by_category_difficulty"]["figure"]
    bars = dict(zip(figure["data"][0]["x"], figure["data"][0]["y"], strict=True))
    for label, rate in bars.items():
        category, difficulty = label.split(" · ")
        rows = TrainingExample.objects.filter(
            execution__task__category=category, execution__task__difficulty=difficulty
        )
        assert rate == pytest.approx(rows.filter(execution__success=True).count() / rows.count())
    assert len(bars) == 3


def test_the_examples_lists_filters_narrow_every_figure(client, viewer):
    make_world()
    client.force_login(viewer)
    response = page(client, category="testing", min_quality="0.5")
    assert response.context["summary"]["total_examples"] == 1
    html = response.content.decode()
    assert '<option value="testing" selected>' in html  # the form keeps the URL state
    assert 'href="/analytics/report.zip?category=testing&amp;min_quality=0.5"' in html
    assert 'href="/examples/?category=testing&amp;min_quality=0.5"' in html


def test_a_bad_filter_says_what_is_wrong_and_shows_everything(client, viewer):
    make_world()
    client.force_login(viewer)
    response = client.get(reverse("analytics-index"), {"min_quality": "2"})
    assert response.status_code == 400
    assert "min_quality" in response.content.decode()
    assert response.context["summary"]["total_examples"] == 5


def test_a_new_and_a_re_reviewed_example_show_on_the_next_load(client, viewer):
    examples = make_world()
    client.force_login(viewer)
    assert page(client).context["summary"]["golden_examples"] == 1
    make_example(make_execution(make_task(name="d")), quality_score=0.95, is_golden=True)
    TrainingExample.objects.filter(pk=examples[2].pk).update(validated=True)
    examples[2].refresh_from_db()
    examples[2].save()  # bumps updated_at, as a review does
    summary = page(client, refresh="1").context["summary"]
    assert summary["golden_examples"] == 2
    assert summary["validated_examples"] == 1
    assert summary["total_examples"] == 6


def test_a_bar_and_its_table_row_link_to_the_examples_behind_them(client, viewer):
    make_world()
    client.force_login(viewer)
    response = page(client, validated="false")
    payload = payloads(response)["by_category_difficulty"]
    figure, links = payload["figure"], payload["links"]
    row = figure["data"][0]["x"].index("debugging · hard")
    assert figure["data"][0]["customdata"][row] == row
    assert links[row] == "validated=false&category=debugging&difficulty=hard"
    listed = client.get("/examples/?" + links[row]).context["page"]
    assert listed.count == 1
    html = response.content.decode()
    assert f'<a href="/examples/?{links[row].replace("&", "&amp;")}">debugging</a>' in html


def test_rows_the_list_cannot_filter_link_nowhere(client, viewer):
    make_world()
    client.force_login(viewer)
    payload = payloads(page(client))["failure_reasons"]
    assert payload["links"] == []


def test_the_csv_zip_holds_the_pages_numbers(client, viewer):
    make_world()
    client.force_login(viewer)
    summary = page(client, category="debugging").context["summary"]
    response = client.get(reverse("analytics-report-zip"), {"category": "debugging"})
    assert response["Content-Disposition"] == 'attachment; filename="analytics-csv.zip"'
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert {f"{name}.csv" for name in CHARTS} | {"summary.csv"} <= set(archive.namelist())
    rows = dict(csv.reader(io.StringIO(archive.read("summary.csv").decode())))
    assert int(rows["total_examples"]) == summary["total_examples"] == 3
    assert archive.read("filters.txt") == b"category=debugging\n"


def test_the_html_report_downloads_for_the_same_filters(client, viewer):
    make_world()
    client.force_login(viewer)
    response = client.get(reverse("analytics-report-html"), {"category": "testing"})
    assert response["Content-Disposition"] == 'attachment; filename="analytics.html"'
    html = response.content.decode()
    assert "filtered by category=testing" in html
    assert '<span class="value" id="total-examples">2</span>' in html


def test_plotly_js_is_the_packages_file_gzipped_and_cached_for_a_year(client, viewer):
    client.force_login(viewer)
    digest = plotly_bundle().digest
    response = client.get(
        reverse("analytics-plotly-js"), {"v": digest}, headers={"Accept-Encoding": "gzip"}
    )
    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.content) == PLOTLY_JS.read_bytes()
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "Accept-Encoding" in response["Vary"]
    plain = client.get(reverse("analytics-plotly-js"), {"v": digest})
    assert plain.content == PLOTLY_JS.read_bytes()
    assert client.get(reverse("analytics-plotly-js"), {"v": "old"}).status_code == 404


def test_plotlys_own_styles_come_as_a_stylesheet_the_page_links(client, viewer):
    client.force_login(viewer)
    css = client.get(reverse("analytics-plotly-css")).content.decode()
    assert ".js-plotly-plot .plotly .modebar{position:absolute;top:2px;right:2px;}" in css
    html = page(client).content.decode()
    bundle = plotly_bundle()
    assert 'id="plotly.js-style-global" class="no-inline-styles"' in html
    assert f'<template id="{bundle.maplibre_style_id}"></template>' in html
    assert f'src="/analytics/plotly.min.js?v={bundle.digest}"' in html


def test_untrusted_names_are_escaped_in_tables_and_chart_data(client, viewer):
    execution = make_execution(model="</script><b>x</b>")
    make_example(execution, quality_score=0.5)
    client.force_login(viewer)
    html = page(client).content.decode()
    assert "</script><b>x</b>" not in html
    assert "&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in html
    assert payloads(page(client))["cost_by_model"]["figure"]["data"][0]["x"] == [
        "</script><b>x</b>"
    ]


# --- freshness: the page answers from the snapshot as it is ------------------------------------


def test_the_page_says_how_old_its_figures_are(client, viewer):
    make_world()
    client.force_login(viewer)
    html = page(client).content.decode()
    freshness = html[html.index('id="freshness"') :].split("</p>", 1)[0]
    assert re.search(
        r"Data as of <time datetime=\"[^\"]+\" title=\"[^\"]+\">\d+ s ago</time>", freshness
    )


@pytest.fixture
def big_snapshot(settings: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A snapshot of its own that counts as big: pages no longer refresh it themselves."""
    settings.DATA_DIR = tmp_path
    monkeypatch.setattr(freshness, "INLINE_BELOW", 0)
    yield tmp_path
    freshness.wait_for_refreshes(60)


@pytest.mark.django_db(transaction=True)  # the background refresh reads on its own connection
def test_an_old_snapshot_is_refreshed_in_the_background_while_the_page_answers(
    client, viewer, big_snapshot
):
    make_world()
    client.force_login(viewer)
    assert page(client).context["summary"]["total_examples"] == 5  # built by the first load
    make_example(make_execution(make_task(name="d")), quality_score=0.95)
    fresh = page(client)  # within MAX_AGE: as it is, nothing started
    assert fresh.context["summary"]["total_examples"] == 5
    assert not fresh.context["freshness"].refreshing
    later = timezone.now() + freshness.MAX_AGE + timedelta(seconds=1)
    with time_machine.travel(later, tick=True):
        old = page(client)
        assert old.context["summary"]["total_examples"] == 5
        assert "refreshing in the background" in old.content.decode()
        freshness.wait_for_refreshes(60)
        # A new snapshot version: the older figures at once, with their own date, while the
        # new version's are computed in the background.
        stale = page(client)
        assert stale.context["summary"]["total_examples"] == 5
        assert stale.context["freshness"].as_of == old.context["freshness"].as_of
        assert "refreshing in the background" in stale.content.decode()
        freshness.wait_for_refreshes(60)
        refreshed = page(client)
    assert refreshed.context["summary"]["total_examples"] == 6
    assert refreshed.context["freshness"].as_of > old.context["freshness"].as_of
    assert not refreshed.context["freshness"].refreshing


def _fail_if_waiting(*_: Any) -> None:
    raise TimeoutError("the page waited for another process's refresh")


@pytest.mark.parametrize("params", [{}, {"refresh": "1"}])
def test_no_load_waits_for_another_processs_refresh(client, viewer, settings, tmp_path, params):
    settings.DATA_DIR = tmp_path
    make_world()
    client.force_login(viewer)
    page(client)  # the snapshot exists
    make_example(make_execution(make_task(name="d")), quality_score=0.95)
    signal.signal(signal.SIGALRM, _fail_if_waiting)
    signal.alarm(60)
    try:
        with open(snapshot_dir() / "lock", "w") as lock:  # another process, refreshing
            fcntl.flock(lock, fcntl.LOCK_EX)
            response = page(client, **params)
    finally:
        signal.alarm(0)
    assert response.context["summary"]["total_examples"] == 5
    assert "refreshing in the background" in response.content.decode()
    assert page(client, **params).context["summary"]["total_examples"] == 6  # lock released


@pytest.fixture
def computations(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The filters of every analytics computation the result cache runs."""
    from exports.analytics import cache

    seen: list[Any] = []
    real = cache.compute

    def counted(filters: Any, *args: Any) -> Any:
        seen.append(filters.model_dump(exclude_defaults=True))
        return real(filters, *args)

    monkeypatch.setattr(cache, "compute", counted)
    return seen


def test_the_page_and_its_downloads_compute_once_per_version_and_filters(
    client, viewer, settings, tmp_path, computations
):
    settings.DATA_DIR = tmp_path
    make_world()
    client.force_login(viewer)
    assert page(client).context["summary"]["total_examples"] == 5
    assert page(client).context["summary"]["total_examples"] == 5
    filtered = page(client, category="testing")
    assert filtered.context["summary"]["total_examples"] == 2
    assert computations == [{}, {"category": "testing"}]
    report = client.get(reverse("analytics-report-zip"), {"category": "testing"})
    summary = zipfile.ZipFile(io.BytesIO(report.content)).read("summary.csv").decode()
    assert "total_examples,2" in summary
    client.get(reverse("analytics-report-html"))
    assert computations == [{}, {"category": "testing"}]  # the downloads read the same results
    make_example(make_execution(make_task(name="d")), quality_score=0.95)
    # A small snapshot is refreshed by the load, and its new figures computed in it.
    assert page(client).context["summary"]["total_examples"] == 6
    assert computations == [{}, {"category": "testing"}, {}]
