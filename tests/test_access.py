"""What each kind of user sees around the pages: the no-role page, the menu, error pages.

Who may open what, URL by URL and role by role, is `tests/test_permissions_matrix.py`.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from collection.models import (
    Execution,
)
from collection.roles import ADMIN, REVIEWER, VIEWER, assign_role
from tests.factories import make_example, make_execution, make_task


def sign_in(client: Client, who: str, django_user_model: type[User]) -> None:
    if who == "anonymous":
        return
    user = django_user_model.objects.create_user(who, password="password")
    roles = {"viewer": VIEWER, "reviewer": REVIEWER, "admin": ADMIN}
    if who in roles:
        assign_role(user, roles[who])
    client.force_login(user)


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
