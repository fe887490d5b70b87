"""Who may do what: every URL pattern the project routes (the admin's included) and every admin
action, for each kind of user, by method.

`MATRIX` holds the expected answer per (URL pattern, method, user); `ADMIN_ACTIONS` per (model
admin, action, user). A URL pattern or an admin action added to the project without a row fails
`test_every_url_pattern_has_a_row` or `test_every_admin_action_has_a_row`: nobody ships a page
or an action whose access nobody decided. Unnamed patterns (the admin's `<id>/` redirects and
its catch-all) are keyed by their route.

Every user POSTs to every URL, including actions their pages do not offer (a viewer posting a
review, a reviewer cancelling a batch or downloading a bundle): the answer comes from the
server's checks, never from what the page happened to show.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from collection.models import (
    AgentAction,
    CollectionJob,
    GenerationBatch,
    ImportUpload,
    JobStatus,
    TrainingExample,
)
from collection.roles import ADMIN, REVIEWER, VIEWER, assign_role
from exports.bundles import exports_dir
from exports.models import ExportJob
from tests.factories import make_example, make_task, make_tool_call

USERS = ("anonymous", "no_role", "viewer", "reviewer", "admin")
ROLES = {"viewer": VIEWER, "reviewer": REVIEWER, "admin": ADMIN}

LOGIN = "302 to the login page"
ADMIN_LOGIN = "302 to the admin's login page"
ADMIN_INDEX = "302 to the admin's index (which sends non-staff to its login page)"
NO_ROLE = "403 with the ask-an-admin page"
# Health answers everyone, signed in or not: 200, or 503 while a service it checks is down.
HEALTH = "200 or 503"
# Past the door: what the view then makes of an empty form (a redirect, a 400 naming the
# missing fields, a confirmation page) is for its own tests; here it may not refuse or break.
ALLOWED = "allowed"

Row = tuple[Any, Any, Any, Any, Any]  # anonymous, no role, viewer, reviewer, admin

# The app's pages.
READ: Row = (LOGIN, NO_ROLE, 200, 200, 200)
REFUSE_POST: Row = (LOGIN, NO_ROLE, 405, 405, 405)  # a page that only reads
REFUSE_GET: Row = (LOGIN, NO_ROLE, 405, 405, 405)  # an action only posts
ADMIN_READ: Row = (LOGIN, NO_ROLE, 403, 403, 200)
REVIEWER_READ: Row = (LOGIN, NO_ROLE, 403, 200, 200)
REVIEWER_WRITE: Row = (LOGIN, NO_ROLE, 403, ALLOWED, ALLOWED)
ADMIN_WRITE: Row = (LOGIN, NO_ROLE, 403, 403, ALLOWED)
PUBLIC: Row = (200, 200, 200, 200, 200)

# The admin site: staff only, and only admins are staff (`collection.roles.assign_role`).
# Signed-in users without staff go to the admin's login page, which says they may not enter.
# Anonymous users sign in on the site's login page first (`LoginRequiredMiddleware`).
SITE_READ: Row = (LOGIN, NO_ROLE, ADMIN_LOGIN, ADMIN_LOGIN, 200)
SITE_WRITE: Row = (LOGIN, NO_ROLE, ADMIN_LOGIN, ADMIN_LOGIN, ALLOWED)
SITE_REDIRECT: Row = (LOGIN, NO_ROLE, ADMIN_LOGIN, ADMIN_LOGIN, 302)
# The site's own pages (index, app lists, password) send anonymous users to the admin's login.
SITE_PAGE: Row = (ADMIN_LOGIN, NO_ROLE, ADMIN_LOGIN, ADMIN_LOGIN, 200)


def _model_admin_rows(model: str) -> dict[str, dict[str, Row]]:
    """A registered model's admin pages: list, add, change, delete, history, `<id>/`."""
    app, name = model.split("_", 1)
    return {
        f"admin:{model}_changelist": {"GET": SITE_READ, "POST": SITE_WRITE},
        f"admin:{model}_add": {"GET": SITE_READ, "POST": SITE_WRITE},
        f"admin:{model}_change": {"GET": SITE_READ, "POST": SITE_WRITE},
        f"admin:{model}_delete": {"GET": SITE_READ, "POST": SITE_WRITE},
        f"admin:{model}_history": {"GET": SITE_READ, "POST": SITE_READ},
        # The old change URL, kept as a redirect to the new one.
        f"admin:admin/{app}/{name}/<path:object_id>/": {"GET": SITE_REDIRECT},
    }


# Every model the admin shows, by its URL prefix. A new ModelAdmin needs a line here.
ADMIN_MODELS = (
    "auth_group",
    "auth_user",
    "collection_task",
    "collection_execution",
    "collection_message",
    "collection_toolcall",
    "collection_agentaction",
    "collection_trainingexample",
    "collection_collectionjob",
    "collection_generationbatch",
    "collection_importupload",
    "exports_exportjob",
)

MATRIX: dict[str, dict[str, Row]] = {
    "collection-dashboard": {"GET": READ, "POST": REFUSE_POST},
    "collection-example-list": {"GET": READ, "POST": REFUSE_POST},
    "collection-example-bulk": {"GET": REFUSE_GET, "POST": REVIEWER_WRITE},
    "collection-example-detail": {"GET": READ, "POST": REFUSE_POST},
    "collection-execution-detail": {"GET": READ, "POST": REFUSE_POST},
    "collection-tool-output": {"GET": READ, "POST": REFUSE_POST},
    "collection-message-raw": {"GET": READ, "POST": REFUSE_POST},
    # Everyone reads the review panel; only reviewers and admins post it.
    "collection-example-review": {"GET": READ, "POST": REVIEWER_WRITE},
    "collection-example-step-mark": {"GET": REFUSE_GET, "POST": REVIEWER_WRITE},
    "collection-review-queue": {"GET": READ, "POST": REFUSE_POST},
    "collection-task-list": {"GET": READ, "POST": REFUSE_POST},
    "collection-task-create": {"GET": ADMIN_READ, "POST": ADMIN_WRITE},
    "collection-task-detail": {"GET": READ, "POST": REFUSE_POST},
    "collection-task-edit": {"GET": ADMIN_READ, "POST": ADMIN_WRITE},
    "collection-task-collect": {"GET": REFUSE_GET, "POST": ADMIN_WRITE},
    "collection-job-list": {"GET": READ, "POST": REFUSE_POST},
    "collection-job-detail": {"GET": READ, "POST": REFUSE_POST},
    "collection-job-action": {"GET": REFUSE_GET, "POST": ADMIN_WRITE},
    "collection-batch-list": {"GET": ADMIN_READ, "POST": ADMIN_WRITE},
    "collection-batch-detail": {"GET": ADMIN_READ, "POST": REFUSE_POST},
    "collection-batch-action": {"GET": REFUSE_GET, "POST": ADMIN_WRITE},
    "collection-template-list": {"GET": READ, "POST": ADMIN_WRITE},
    "collection-import-list": {"GET": REVIEWER_READ, "POST": REVIEWER_WRITE},
    "collection-import-detail": {"GET": REVIEWER_READ, "POST": REFUSE_POST},
    "exports-index": {"GET": READ, "POST": REFUSE_POST},
    "exports-create": {"GET": REFUSE_GET, "POST": ADMIN_WRITE},
    "exports-job-detail": {"GET": READ, "POST": REFUSE_POST},
    "exports-job-action": {"GET": REFUSE_GET, "POST": ADMIN_WRITE},
    # Bundles hold every example's data: admins only.
    "exports-download": {"GET": ADMIN_READ, "POST": REFUSE_POST},
    # Analytics: figures only (no transcript text), so every role reads them and their reports.
    "analytics-index": {"GET": READ, "POST": REFUSE_POST},
    "analytics-report-html": {"GET": READ, "POST": REFUSE_POST},
    "analytics-report-zip": {"GET": READ, "POST": REFUSE_POST},
    "analytics-plotly-js": {"GET": READ, "POST": REFUSE_POST},
    "analytics-plotly-css": {"GET": READ, "POST": REFUSE_POST},
    # Signing in and out, and health, work for everyone (a user without a role included).
    "login": {"GET": PUBLIC, "POST": PUBLIC},
    "logout": {"GET": (LOGIN, 405, 405, 405, 405), "POST": (LOGIN,) * 5},
    "healthz": {"GET": (HEALTH,) * 5, "POST": (405,) * 5},
    # The admin site's own pages.
    "admin:index": {"GET": SITE_PAGE, "POST": SITE_PAGE},
    # Its login page answers everyone; an admin already signed in goes on to the index.
    "admin:login": {"GET": (200, 200, 200, 200, 302), "POST": PUBLIC},
    "admin:logout": {
        "GET": (ADMIN_LOGIN, ADMIN_INDEX, ADMIN_INDEX, ADMIN_INDEX, 405),
        "POST": (ADMIN_LOGIN, ADMIN_INDEX, ADMIN_INDEX, ADMIN_INDEX, LOGIN),
    },
    "admin:password_change": {"GET": SITE_PAGE, "POST": SITE_PAGE},
    "admin:password_change_done": {"GET": SITE_PAGE},
    # Autocomplete answers only a widget's full query (app, model, field): 403 without one.
    "admin:autocomplete": {"GET": (ADMIN_LOGIN, NO_ROLE, ADMIN_LOGIN, ADMIN_LOGIN, 403)},
    "admin:jsi18n": {"GET": SITE_PAGE},
    "admin:view_on_site": {"GET": (ADMIN_LOGIN, NO_ROLE, ADMIN_LOGIN, ADMIN_LOGIN, 302)},
    "admin:app_list": {"GET": SITE_PAGE},
    "admin:auth_user_password_change": {"GET": SITE_READ, "POST": SITE_WRITE},
    # Anything else under /admin/: the admin's 404, once signed in as staff.
    "admin:admin/(?P<url>.*)$": {"GET": (ADMIN_LOGIN, NO_ROLE, ADMIN_LOGIN, ADMIN_LOGIN, 404)},
}
for _model in ADMIN_MODELS:
    MATRIX |= _model_admin_rows(_model)
# An import upload is made by uploading, never by hand: the folder it names is imported and
# then removed, so its add page is refused even to admins.
SITE_REFUSED: Row = (LOGIN, NO_ROLE, ADMIN_LOGIN, ADMIN_LOGIN, 403)
MATRIX["admin:collection_importupload_add"] = {"GET": SITE_REFUSED, "POST": SITE_REFUSED}

# Admin actions: (model, action) -> who may run it. Only admins reach the admin site at all;
# an action the change list does not offer a user is refused like one it does.
ACTION_DONE: Row = (LOGIN, NO_ROLE, ADMIN_LOGIN, ADMIN_LOGIN, 302)
CONFIRM: Row = (LOGIN, NO_ROLE, ADMIN_LOGIN, ADMIN_LOGIN, 200)  # delete asks first
EXPORT_FORMATS = (
    *("jsonl", "conversations", "instruct", "messages", "preference", "stepwise", "adp"),
    *("atif", "evaluation", "huggingface"),
)
ADMIN_ACTIONS: dict[tuple[str, str], Row] = {
    **{(model, "delete_selected"): CONFIRM for model in ADMIN_MODELS},
    ("collection_trainingexample", "rescore"): ACTION_DONE,
    ("collection_trainingexample", "mark_golden"): ACTION_DONE,
    ("collection_trainingexample", "unmark_golden"): ACTION_DONE,
    ("collection_trainingexample", "mark_validated"): ACTION_DONE,
    ("collection_trainingexample", "unmark_validated"): ACTION_DONE,
    ("collection_trainingexample", "add_tags"): ACTION_DONE,
    ("collection_trainingexample", "remove_tags"): ACTION_DONE,
    **{("collection_trainingexample", f"export_as_{f}"): ACTION_DONE for f in EXPORT_FORMATS},
    ("collection_collectionjob", "cancel"): ACTION_DONE,
    ("collection_collectionjob", "requeue"): ACTION_DONE,
    ("exports_exportjob", "cancel"): ACTION_DONE,
    ("exports_exportjob", "requeue"): ACTION_DONE,
}


# --- the tables cover everything --------------------------------------------------------------


def url_keys(resolver: URLResolver | None = None, namespace: str = "", route: str = "") -> set[str]:
    """Every URL pattern the project routes: `namespace:name`, or `namespace:route` unnamed."""
    keys: set[str] = set()
    for entry in (resolver or get_resolver()).url_patterns:
        here = route + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            keys |= url_keys(entry, inner, here)
        elif isinstance(entry, URLPattern):
            keys.add(namespace + (entry.name or here))
    return keys


def test_every_url_pattern_has_a_row():
    routed = url_keys()
    assert sorted(routed - set(MATRIX)) == [], "URL patterns nobody decided access for"
    assert sorted(set(MATRIX) - routed) == [], "rows for URL patterns that no longer exist"


@pytest.mark.django_db
def test_every_admin_action_has_a_row(rf, admin_user):
    request = rf.get("/admin/")
    request.user = admin_user
    offered = {
        (f"{model._meta.app_label}_{model._meta.model_name}", name)
        for model, model_admin in admin.site._registry.items()
        for name in model_admin.get_actions(request)
    }
    assert sorted(offered ^ set(ADMIN_ACTIONS)) == []


def test_every_admin_model_has_its_rows():
    registered = {f"{m._meta.app_label}_{m._meta.model_name}" for m in admin.site._registry}
    assert registered == set(ADMIN_MODELS)


# --- the world the URLs point into ------------------------------------------------------------


@pytest.fixture
def world(roles, settings, tmp_path) -> dict[str, Any]:
    """One of each object a URL names; returns each row's URL."""
    settings.DATA_DIR = tmp_path
    example = make_example()
    execution = example.execution
    message, _ = execution.append_message({"type": "assistant", "content": []}, uuid="m1")
    call = make_tool_call(execution, 1, requested_in=message)
    action = AgentAction.objects.create(execution=execution, agent_id="a", action_type="tool_use")
    job = CollectionJob.objects.create(task=make_task(), status=JobStatus.FAILED, error="boom")
    batch = GenerationBatch.objects.create(name="b", params={"seed": 0}, status=JobStatus.RUNNING)
    upload = ImportUpload.objects.create(file_name="s.jsonl", path=str(tmp_path / "gone"))
    export = _finished_export()
    failed_export = ExportJob.objects.create(format="jsonl", status=JobStatus.FAILED, error="x")
    someone = User.objects.create_user("someone", password="password")
    objects = {
        "auth_group": Group.objects.get(name=VIEWER),
        "auth_user": someone,
        "collection_task": job.task,
        "collection_execution": execution,
        "collection_message": message,
        "collection_toolcall": call,
        "collection_agentaction": action,
        "collection_trainingexample": example,
        "collection_collectionjob": job,
        "collection_generationbatch": batch,
        "collection_importupload": upload,
        "exports_exportjob": failed_export,
    }
    kwargs: dict[str, dict[str, Any]] = {
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
        "admin:view_on_site": {
            "content_type_id": ContentType.objects.get_for_model(TrainingExample).pk,
            "object_id": example.pk,
        },
        "admin:app_list": {"app_label": "collection"},
        "admin:auth_user_password_change": {"id": someone.pk},
    }
    urls: dict[str, str] = {"admin:admin/(?P<url>.*)$": "/admin/no/such/page/"}
    for model, obj in objects.items():
        for page in ("change", "delete", "history"):
            kwargs[f"admin:{model}_{page}"] = {"object_id": obj.pk}
        app, name = model.split("_", 1)
        urls[f"admin:admin/{app}/{name}/<path:object_id>/"] = f"/admin/{app}/{name}/{obj.pk}/"
    for key in set(MATRIX) - set(urls):
        urls[key] = reverse(key, kwargs=kwargs.get(key, {}))
    return {"urls": urls, "objects": objects, "kwargs": kwargs}


def _finished_export() -> ExportJob:
    """A finished export whose bundle is on disk, kept for a day."""
    job = ExportJob.objects.create(
        format="jsonl",
        status=JobStatus.SUCCEEDED,
        bundle_name="export-matrix-jsonl.zip",
        expires_at=timezone.now() + timedelta(days=1),
    )
    (exports_dir() / job.bundle_name).write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    return job


@pytest.fixture
def clients(roles) -> Iterator[dict[str, Client]]:
    """A signed-in client per kind of user (an anonymous one included)."""
    found = {"anonymous": Client()}
    for who in USERS[1:]:
        user = User.objects.create_user(f"matrix-{who}", password="password")
        if who in ROLES:
            assign_role(user, ROLES[who])
        found[who] = Client()
        found[who].force_login(user)
    yield found


def outcome(response: Any, expected: Any) -> Any:
    """What a response amounts to, in the table's terms (the expected value when it matches)."""
    status, location = response.status_code, response.headers.get("Location", "")
    if expected == LOGIN and status == 302 and location.split("?")[0] == reverse("login"):
        return LOGIN
    if expected == ADMIN_LOGIN and status == 302 and location.startswith(reverse("admin:login")):
        return ADMIN_LOGIN
    if expected == ADMIN_INDEX and status == 302 and location == reverse("admin:index"):
        return ADMIN_INDEX
    if expected == NO_ROLE and status == 403 and b'id="no-role"' in response.content:
        return NO_ROLE
    if expected == HEALTH and status in (200, 503):
        return HEALTH
    if expected == ALLOWED and status < 500 and status not in (403, 404, 405):
        return ALLOWED
    if status == expected or not location:
        return status
    return f"{status} to {location}"


@pytest.mark.parametrize("key", sorted(MATRIX))
def test_each_url_answers_each_user_as_the_matrix_says(key, world, clients, stub_broker):
    url = world["urls"][key]
    answers, expected = {}, {}
    for method, row in MATRIX[key].items():
        for who, wanted in zip(USERS, row, strict=True):
            client = clients[who]
            response = client.get(url) if method == "GET" else client.post(url, {})
            answers[method, who] = outcome(response, wanted)
            expected[method, who] = wanted
    assert answers == expected


@pytest.mark.parametrize(("model", "action"), sorted(ADMIN_ACTIONS))
def test_each_admin_action_answers_each_user_as_the_table_says(
    model, action, world, clients, stub_broker
):
    app, name = model.split("_", 1)
    url = reverse(f"admin:{model}_changelist")
    chosen = world["objects"][model].pk
    data = {"action": action, "_selected_action": [chosen], "index": 0}
    answers = {
        who: outcome(clients[who].post(url, data), wanted)
        for who, wanted in zip(USERS, ADMIN_ACTIONS[model, action], strict=True)
    }
    assert answers == dict(zip(USERS, ADMIN_ACTIONS[model, action], strict=True))
    done = clients["admin"].post(url, data, follow=True)
    if ADMIN_ACTIONS[model, action][-1] == 302:
        # The action ran (a message says what it did), not "No action selected".
        said = [str(m) for m in done.context["messages"]]
        assert said and not any("No action selected" in m for m in said), said


# Every action an action URL knows, and names it does not: an unknown action is a 404 for
# those allowed to act at all, and refused like a known one for everyone else.
ACTION_URLS = {
    "collection-job-action": ("cancel", "retry"),
    "collection-batch-action": ("cancel", "resume"),
    "exports-job-action": ("cancel", "retry"),
}
UNKNOWN_ACTIONS = ("delete", "requeue", "..", "%2e%2e", "retry%00")


@pytest.mark.parametrize(
    ("name", "action", "row"),
    [
        *((n, a, ADMIN_WRITE) for n, actions in ACTION_URLS.items() for a in actions),
        *((n, a, (LOGIN, NO_ROLE, 403, 403, 404)) for n in ACTION_URLS for a in UNKNOWN_ACTIONS),
    ],
)
def test_each_action_of_an_action_url_answers_as_designed(
    name, action, row, world, clients, stub_broker
):
    assert set(ACTION_URLS) == {k for k in MATRIX if k.endswith("-action")}
    url = reverse(name, kwargs=world["kwargs"][name] | {"action": action})
    expected = dict(zip(USERS, row, strict=True))
    answers = {who: outcome(clients[who].post(url), wanted) for who, wanted in expected.items()}
    assert answers == expected
