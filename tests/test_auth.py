from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver

from collection.roles import (
    ADD_TEMPLATE,
    ADMIN,
    GENERATE,
    IMPORT,
    REVIEW,
    REVIEWER,
    VIEWER,
    role_of,
)
from tests.factories import make_example

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = {"/accounts/login/", "/healthz", "/admin/login/"}


def all_urls(resolver: URLResolver | None = None, prefix: str = "") -> list[str]:
    """Every URL the project routes, with 1 for each path argument."""
    urls: list[str] = []
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            urls += all_urls(entry, route)
        elif isinstance(entry, URLPattern):
            url = re.sub(r"<(?:\w+:)?\w+>", "1", route)
            url = re.sub(r"\(\?P<\w+>[^)]*\)", "1", url).lstrip("^").rstrip("$").replace("\\", "")
            urls.append("/" + url.replace("^", ""))
    return urls


@pytest.mark.django_db
def test_every_url_needs_a_login(client):
    urls = all_urls()
    assert len(urls) > 20  # the admin's URLs are in there too
    for url in sorted(set(urls) - PUBLIC):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "login" in response.headers["Location"], url


@pytest.mark.django_db
def test_the_public_urls_are_only_login_and_health(client):
    assert client.get("/healthz").json()["database"] == {"status": "ok"}
    assert client.get("/accounts/login/").status_code == 200


@pytest.mark.django_db
def test_roles_are_ordered_viewer_reviewer_admin(viewer, reviewer, admin_user):
    assert [role_of(u) for u in (viewer, reviewer, admin_user)] == [VIEWER, REVIEWER, ADMIN]
    assert admin_user.is_staff and not reviewer.is_staff


@pytest.mark.django_db
def test_each_role_holds_the_page_permissions_of_the_roles_below_it(viewer, reviewer, admin_user):
    pages = (REVIEW, IMPORT, GENERATE, ADD_TEMPLATE)
    held = {
        user.username: [user.has_perm(p) for p in pages] for user in (viewer, reviewer, admin_user)
    }
    assert held == {
        viewer.username: [False, False, False, False],
        reviewer.username: [True, True, False, False],
        admin_user.username: [True, True, True, True],
    }


@pytest.mark.django_db
def test_a_superuser_without_a_role_holds_every_page_permission(django_user_model):
    root = django_user_model.objects.create_superuser("root", password="x")
    assert role_of(root) == ADMIN
    assert root.has_perms((REVIEW, IMPORT, GENERATE, ADD_TEMPLATE))


@pytest.mark.django_db
def test_a_viewer_can_read_but_not_review(client, viewer):
    example = make_example()
    client.force_login(viewer)
    assert client.get(f"/examples/{example.pk}/").status_code == 200
    response = client.post(f"/examples/{example.pk}/review/", {"is_golden": "on"})
    assert response.status_code == 403
    example.refresh_from_db()
    assert not example.is_golden


@pytest.mark.django_db
def test_a_reviewer_can_review_but_not_use_the_admin(client, reviewer):
    example = make_example()
    client.force_login(reviewer)
    response = client.post(
        f"/examples/{example.pk}/review/",
        {"is_golden": "on", "validated": "on", "validator_notes": "clean fix", "tags": "py, ok"},
    )
    assert response.status_code == 302
    example.refresh_from_db()
    assert (example.is_golden, example.validated, example.reviewer) == (True, True, reviewer)
    assert example.tags == ["ok", "py"]
    assert client.get("/admin/").status_code == 302  # to the admin login


@pytest.mark.django_db
def test_an_admin_sees_every_admin_changelist(client, admin_user):
    make_example()
    client.force_login(admin_user)
    models = (
        "task",
        "execution",
        "message",
        "toolcall",
        "agentaction",
        "trainingexample",
        "collectionjob",
        "generationbatch",
        "importupload",
    )
    for model in models:
        assert client.get(f"/admin/collection/{model}/").status_code == 200, model


@pytest.mark.django_db
def test_a_user_without_a_role_is_refused_review(client, django_user_model):
    user = django_user_model.objects.create_user("nobody", password="x")
    example = make_example()
    client.force_login(user)
    assert client.post(f"/examples/{example.pk}/review/", {}).status_code == 403


@pytest.mark.django_db
def test_public_pages_do_not_look_up_a_signed_in_users_roles(client, django_user_model):
    def permission_lookups(url: str) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        tables = ("auth_permission", "auth_group", "auth_user_user_permissions")
        return [q["sql"] for q in captured.captured_queries if any(t in q["sql"] for t in tables)]

    assert permission_lookups("/healthz") == []  # anonymous
    client.force_login(django_user_model.objects.create_user("nobody", password="x"))
    # (Django's LoginRequiredMiddleware still loads the session and the user.)
    assert permission_lookups("/healthz") == []
    # Everywhere else the user without a role is asked about, and told to ask for one.
    assert permission_lookups("/") != []
    assert client.get("/").status_code == 403
    assert client.get("/accounts/login/").status_code == 200


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRAININGDASH", "DEBUG", "SECRET_KEY", "DJANGO_"))
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "trainingdash.settings",
        "SECRET_KEY": "k" * 30 + "-production-secret-key-" + "z" * 30,
        "ALLOWED_HOSTS": "trainingdash.example.com",
        "TRAININGDASH_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    env |= {
        "DJANGO_SETTINGS_MODULE": "trainingdash.settings",
        "TRAININGDASH_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "links"),
    [
        ("viewer", []),
        ("reviewer", ["/imports/"]),
        ("admin_user", ["/imports/", "/batches/", "/admin/"]),
    ],
)
def test_the_menu_shows_only_the_pages_a_user_may_open(client, request, role, links):
    client.force_login(request.getfixturevalue(role))
    page = client.get("/").content.decode()
    guarded = ("/imports/", "/batches/", "/admin/")
    assert [url for url in guarded if f'href="{url}"' in page] == links


@pytest.mark.django_db
def test_pages_ask_for_permissions_not_roles(client, django_user_model):
    user = django_user_model.objects.create_user("importer", password="x")
    user.user_permissions.add(Permission.objects.get(codename="add_importupload"))
    client.force_login(user)
    assert client.get("/imports/").status_code == 200
    assert client.get("/batches/").status_code == 403
