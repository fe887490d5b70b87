"""Who may open what: every URL the project routes, for every kind of user, by method.

The matrix lists each URL name with the status each user gets. A URL added to the project
without a row fails `test_every_url_has_a_row_in_the_matrix`, so nobody ships a page whose
access nobody decided.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from collection.models import (
    CollectionJob,
    Execution,
    GenerationBatch,
    ImportUpload,
    JobStatus,
)
from collection.roles import ADMIN, REVIEWER, VIEWER, assign_role
from exports.bundles import exports_dir
from exports.models import ExportJob
from tests.factories import make_example, make_execution, make_task, make_tool_call

USERS = ("anonymous", "no_role", "viewer", "reviewer", "admin")
LOGIN = "302 to the login page"
ADMIN_LOGIN = "302 to the admin's login page"
# Past the door: what the view then makes of an empty form (a redirect, a 400 naming the
# missing fields) is for its own tests; here it only may not refuse, lose or break.
ALLOWED = "allowed"

Row = tuple[Any, Any, Any, Any, Any]  # anonymous, no role, viewer, reviewer, admin
READ: Row = (LOGIN, 403, 200, 200, 200)
NOT_POST: Row = (LOGIN, 403, 405, 405, 405)  # a read-only page refuses a POST
POST_ONLY: Row = (LOGIN, 403, 405, 405, 405)  # an action refuses a GET
ADMIN_READ: Row = (LOGIN, 403, 403, 403, 200)
REVIEWER_WRITE: Row = (LOGIN, 403, 403, ALLOWED, ALLOWED)
ADMIN_WRITE: Row = (LOGIN, 403, 403, 403, ALLOWED)
PUBLIC: Row = (200, 200, 200, 200, 200)

MATRIX: dict[str, dict[str, Row]] = {
    "collection-dashboard": {"GET": READ, "POST": NOT_POST},
    "collection-example-list": {"GET": READ, "POST": NOT_POST},
    "collection-example-bulk": {"GET": POST_ONLY, "POST": REVIEWER_WRITE},
    "collection-example-detail": {"GET": READ, "POST": NOT_POST},
    "collection-execution-detail": {"GET": READ, "POST": NOT_POST},
    "collection-tool-output": {"GET": READ, "POST": NOT_POST},
    "collection-message-raw": {"GET": READ, "POST": NOT_POST},
    "collection-example-review": {"GET": READ, "POST": REVIEWER_WRITE},
    "collection-example-step-mark": {"GET": POST_ONLY, "POST": REVIEWER_WRITE},
    "collection-review-queue": {"GET": READ, "POST": NOT_POST},
    "collection-task-list": {"GET": READ, "POST": NOT_POST},
    "collection-task-create": {"GET": ADMIN_READ, "POST": ADMIN_WRITE},
    "collection-task-detail": {"GET": READ, "POST": NOT_POST},
    "collection-task-edit": {"GET": ADMIN_READ, "POST": ADMIN_WRITE},
    "collection-task-collect": {"GET": POST_ONLY, "POST": ADMIN_WRITE},
    "collection-job-list": {"GET": READ, "POST": NOT_POST},
    "collection-job-detail": {"GET": READ, "POST": NOT_POST},
    "collection-job-action": {"GET": POST_ONLY, "POST": ADMIN_WRITE},
    "collection-batch-list": {"GET": ADMIN_READ, "POST": ADMIN_WRITE},
    "collection-batch-detail": {"GET": ADMIN_READ, "POST": POST_ONLY},
    "collection-batch-action": {"GET": POST_ONLY, "POST": ADMIN_WRITE},
    "collection-template-list": {"GET": READ, "POST": ADMIN_WRITE},
    "collection-import-list": {"GET": (LOGIN, 403, 403, 200, 200), "POST": REVIEWER_WRITE},
    "collection-import-detail": {"GET": (LOGIN, 403, 403, 200, 200), "POST": POST_ONLY},
    "exports-index": {"GET": READ, "POST": NOT_POST},
    "exports-create": {"GET": POST_ONLY, "POST": ADMIN_WRITE},
    "exports-job-detail": {"GET": READ, "POST": NOT_POST},
    "exports-job-action": {"GET": POST_ONLY, "POST": ADMIN_WRITE},
    # Bundles hold every example's data: admins only.
    "exports-download": {"GET": ADMIN_READ, "POST": NOT_POST},
    # Analytics: figures only (no transcript text), so every role reads them and their reports.
    "analytics-index": {"GET": READ, "POST": NOT_POST},
    "analytics-report-html": {"GET": READ, "POST": NOT_POST},
    "analytics-report-zip": {"GET": READ, "POST": NOT_POST},
    "analytics-plotly-js": {"GET": READ, "POST": NOT_POST},
    "analytics-plotly-css": {"GET": READ, "POST": NOT_POST},
    # Signing in and out, and health, work for everyone (a user without a role included).
    "login": {"GET": PUBLIC, "POST": PUBLIC},
    "logout": {"GET": (LOGIN, 405, 405, 405, 405), "POST": (LOGIN,) * 5},
    "healthz": {"GET": PUBLIC},
    # The admin: its index stands for the whole site (the admin guards its own pages).
    "admin:index": {"GET": (ADMIN_LOGIN, 403, ADMIN_LOGIN, ADMIN_LOGIN, 200)},
}


def url_names(resolver: URLResolver | None = None, namespace: str = "") -> set[str]:
    """Every named URL the project routes; of the admin, only its index."""
    names: set[str] = set()
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            names |= url_names(entry, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            names.add(namespace + entry.name)
    return {n for n in names if not n.startswith("admin:")} | {"admin:index"}


def test_every_url_has_a_row_in_the_matrix():
    assert url_names() == set(MATRIX)


# --- the world the URLs point into ---------------------------------------------------------------


@pytest.fixture
def world(db) -> dict[str, dict[str, Any]]:
    """One of each object a URL names, and the URL arguments that reach them."""
    example = make_example()
    execution = example.execution
    message, _ = execution.append_message({"type": "assistant", "content": []}, uuid="m1")
    call = make_tool_call(execution, 1, requested_in=message)
    job = CollectionJob.objects.create(task=make_task(), status=JobStatus.FAILED, error="boom")
    batch = GenerationBatch.objects.create(name="b", params={"seed": 0}, status=JobStatus.RUNNING)
    upload = ImportUpload.objects.create(file_name="s.jsonl", path="/nonexistent")
    export = finished_export()
    failed_export = ExportJob.objects.create(format="jsonl", status=JobStatus.FAILED, error="x")
    return {
        "collection-example-detail": {"pk": example.pk},
        "collection-example-review": {"pk": example.pk},
        "collection-example-step-mark": {"pk": example.pk},
        "collection-execution-detail": {"pk": execution.pk},
        "collection-tool-output": {"pk": execution.pk, "call_pk": call.pk},
        "collection-message-raw": {"pk": execution.pk, "message_pk": message.pk},
        "collection-task-detail": {"pk": job.task_id},
        "collection-task-edit": {"pk": job.task_id},
        "collection-task-collect": {"pk": job.task_id},
        "collection-job-detail": {"pk": job.pk},
        "collection-job-action": {"pk": job.pk, "action": "retry"},
        "collection-batch-detail": {"pk": batch.pk},
        "collection-batch-action": {"pk": batch.pk, "action": "cancel"},
        "collection-import-detail": {"pk": upload.pk},
        "exports-job-detail": {"pk": export.pk},
        "exports-download": {"pk": export.pk},
        "exports-job-action": {"pk": failed_export.pk, "action": "retry"},
    }


def finished_export() -> ExportJob:
    """A finished export whose bundle is on disk, kept for a day."""
    job = ExportJob.objects.create(
        format="jsonl",
        status=JobStatus.SUCCEEDED,
        bundle_name="export-access-jsonl.zip",
        expires_at=timezone.now() + timedelta(days=1),
    )
    (exports_dir() / job.bundle_name).write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    return job


def sign_in(client: Client, who: str, django_user_model: type[User]) -> None:
    if who == "anonymous":
        return
    user = django_user_model.objects.create_user(who, password="password")
    roles = {"viewer": VIEWER, "reviewer": REVIEWER, "admin": ADMIN}
    if who in roles:
        assign_role(user, roles[who])
    client.force_login(user)


CASES = [
    pytest.param(name, method, who, expected[USERS.index(who)], id=f"{name}-{method}-{who}")
    for name, methods in MATRIX.items()
    for method, expected in methods.items()
    for who in USERS
]


@pytest.mark.parametrize(("name", "method", "who", "expected"), CASES)
def test_the_matrix(
    client, roles, world, stub_broker, django_user_model, name, method, who, expected
):
    sign_in(client, who, django_user_model)
    url = reverse(name, kwargs=world.get(name, {}))
    response = client.get(url) if method == "GET" else client.post(url, {})
    check(response, expected, who)


def check(response: Any, expected: Any, who: str) -> None:
    status, location = response.status_code, response.headers.get("Location", "")
    if expected == LOGIN:
        assert (status, location.split("?")[0]) == (302, reverse("login"))
    elif expected == ADMIN_LOGIN:
        assert (status, location.split("?")[0]) == (302, reverse("admin:login"))
    elif expected == ALLOWED:
        assert status < 500 and status not in (403, 404, 405), status
    else:
        assert status == expected
    if who == "no_role" and status == 403:
        # Not a bare refusal: the page that says what to do, and none of the data.
        assert b'id="no-role"' in response.content


# --- the pages around the matrix ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_user_without_a_role_sees_how_to_get_one_and_no_menu(client, django_user_model):
    make_example(make_task_named("Secret task"))
    sign_in(client, "no_role", django_user_model)
    page = client.get("/").content.decode()
    assert "Ask an admin" in page
    assert "Secret task" not in page
    assert '<nav aria-label="Main">' not in page
    assert 'action="/accounts/logout/"' in page  # they can still sign out


def make_task_named(name: str) -> Execution:
    return make_execution(make_task(name=name))


@pytest.mark.django_db
def test_a_user_with_a_permission_but_no_role_is_not_turned_away(client, django_user_model):
    user = django_user_model.objects.create_user("importer", password="x")
    user.user_permissions.add(Permission.objects.get(codename="add_importupload"))
    client.force_login(user)
    assert client.get("/imports/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["viewer", "admin"])
def test_the_404_page_keeps_the_navigation(client, roles, django_user_model, who):
    sign_in(client, who, django_user_model)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert '<nav aria-label="Main">' in page
    assert 'href="/tasks/"' in page and "Nothing here" in page


@pytest.mark.django_db
def test_the_403_page_keeps_the_navigation(client, roles, django_user_model):
    sign_in(client, "viewer", django_user_model)
    response = client.get("/tasks/new/")
    assert response.status_code == 403
    page = response.content.decode()
    assert '<nav aria-label="Main">' in page
    assert "You can't do that here" in page and "(viewer)" in page


@pytest.mark.django_db
def test_an_anonymous_404_shows_no_menu(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert b'<nav aria-label="Main">' not in response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "links"),
    [
        (
            "viewer",
            ["/", "/examples/", "/tasks/", "/jobs/", "/templates/", "/analytics/", "/exports/"],
        ),
        (
            "reviewer",
            ["/", "/examples/", "/review/", "/tasks/", "/jobs/", "/templates/", "/imports/"]
            + ["/analytics/", "/exports/"],
        ),
    ],
)
def test_the_menu_links_the_pages_each_role_reads(client, roles, django_user_model, who, links):
    sign_in(client, who, django_user_model)
    page = client.get("/").content.decode()
    nav = page[page.index('<nav aria-label="Main">') : page.index("</nav>")]
    assert _hrefs(nav) == links


def _hrefs(html: str) -> list[str]:
    return [part.split('"', 1)[0] for part in html.split('href="')[1:]]


@pytest.mark.django_db
def test_the_current_page_is_marked_in_the_menu(client, roles, django_user_model):
    sign_in(client, "viewer", django_user_model)
    page = client.get("/jobs/").content.decode()
    assert '<a href="/jobs/" aria-current="page">Jobs</a>' in page
    assert page.count('aria-current="page"') == 1


@pytest.mark.django_db
def test_the_favicon_is_linked_and_served_at_the_root(client):
    page = client.get("/accounts/login/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert b"".join(icon.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert client.get("/static/favicon.svg").status_code == 200
