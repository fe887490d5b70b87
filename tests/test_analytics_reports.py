"""Analytics reports: the CSV files hold the engine's numbers (checked against the ORM too),
the HTML report is one self-contained file, and the seed's exporter writes both."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path

import pytest

from collection.models import TrainingExample
from exports.analytics.charts import CHARTS, plotly_bundle
from exports.analytics.engine import get_analytics
from exports.analytics.reports import export_analytics
from exports.exporter import TrainingDataExporter
from exports.formats.base import ExportError
from tests.factories import make_example, make_execution, make_task, make_tool_call

pytestmark = pytest.mark.django_db


@pytest.fixture
def examples() -> list[TrainingExample]:
    easy = make_task(name="a", category="debugging", difficulty="easy")
    hard = make_task(name="b", category="testing", difficulty="hard")
    made = [
        make_example(make_execution(easy, input_tokens=100), quality_score=0.9, is_golden=True),
        make_example(make_execution(easy, success=False, cost_usd=0.25), quality_score=0.4),
        make_example(make_execution(hard, model="claude-x"), quality_score=0.65),
    ]
    make_tool_call(made[1].execution, 1, name="Bash", is_error=True)
    return made


def read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text())))


def test_csv_holds_one_file_per_table_and_the_summary(examples, tmp_path):
    folder = export_analytics(tmp_path / "out", format="csv")
    names = {p.name for p in folder.iterdir()}
    assert names == {f"{name}.csv" for name in CHARTS} | {"summary.csv"}


def test_csv_numbers_are_the_engines(examples, tmp_path):
    folder = export_analytics(tmp_path, format="csv")
    analytics = get_analytics(refresh=False)
    for name, table in analytics.tables.items():
        header, *rows = read_csv(folder / f"{name}.csv")
        assert header == table.columns
        assert rows == [[as_text(v) for v in row] for row in table.rows], name


def as_text(value: object) -> str:
    """A value as the csv module writes it, dates in ISO form."""
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def test_csv_summary_matches_counts_made_with_the_orm(examples, tmp_path):
    folder = export_analytics(tmp_path, format="csv")
    summary = dict(read_csv(folder / "summary.csv")[1:])
    assert int(summary["total_examples"]) == TrainingExample.objects.count() == 3
    assert int(summary["golden_examples"]) == TrainingExample.objects.filter(is_golden=True).count()
    passed = TrainingExample.objects.filter(execution__success=True).count()
    assert float(summary["success_rate"]) == pytest.approx(passed / 3)
    assert float(summary["total_cost_usd"]) == pytest.approx(0.01 + 0.25 + 0.01)


def test_csv_follows_the_filters(examples, tmp_path):
    folder = export_analytics(tmp_path, format="csv", filters={"category": "testing"})
    summary = dict(read_csv(folder / "summary.csv")[1:])
    assert summary["total_examples"] == "1"
    assert read_csv(folder / "cost_by_model.csv")[1][0] == "claude-x"


def test_the_html_report_is_one_self_contained_file(examples, tmp_path):
    report = export_analytics(tmp_path, format="html")
    html = report.read_text()
    assert report == tmp_path / "analytics.html"
    assert plotly_bundle().js.decode()[:2000] in html  # plotly.js inlined
    assert "Plotly.newPlot" in html  # and the page's script
    for name in CHARTS:
        assert f'<script id="figure-{name}" type="application/json">' in html
    # Outside the inlined scripts (plotly.js mentions URLs in its strings), nothing to fetch.
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    for remote in ("src=", "<link", "url(", "http://", "https://"):
        assert remote not in markup


def test_the_seed_exporter_writes_both_reports(examples, tmp_path):
    exporter = TrainingDataExporter()
    assert exporter.export_analytics(tmp_path, format="html") == tmp_path / "analytics.html"
    assert (exporter.export_analytics(tmp_path, format="csv") / "summary.csv").exists()


def test_an_unknown_format_is_refused_without_retry(tmp_path):
    with pytest.raises(ExportError, match="unknown analytics format") as raised:
        export_analytics(tmp_path, format="pdf")
    assert raised.value.retryable is False
