"""The Content-Security-Policy: sent on every response, and nothing inline that it would block."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.factories import make_example
from tests.test_permissions_matrix import MATRIX, world  # noqa: F401 - `world`: every URL

pytestmark = pytest.mark.django_db

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def policy(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    directives = [d.strip().split(" ", 1) for d in header.split(";") if d.strip()]
    return dict(directives)


@pytest.mark.parametrize("key", sorted(MATRIX))
def test_every_page_sends_the_policy(admin_client, world, stub_broker, key):  # noqa: F811
    response = admin_client.get(world["urls"][key])
    assert policy(response) == POLICY, response.status_code


@pytest.mark.parametrize(
    "url",
    ["/accounts/login/", "/admin/login/", "/no/such/page/", "/healthz", "/static/css/app.css"],
)
def test_public_pages_errors_and_static_files_send_it_too(client, url):
    assert policy(client.get(url)) == POLICY


def test_the_admin_sends_it_on_its_change_pages(admin_client):
    example = make_example()
    for url in (
        "/admin/",
        "/admin/collection/trainingexample/",
        f"/admin/collection/trainingexample/{example.pk}/change/",
        "/admin/auth/user/add/",
    ):
        assert policy(admin_client.get(url)) == POLICY, url


def test_a_refused_page_sends_it(client, viewer):
    client.force_login(viewer)
    response = client.get("/tasks/new/")
    assert response.status_code == 403
    assert policy(response) == POLICY


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")


@pytest.mark.parametrize("url", ["/", "/tasks/", "/jobs/", "/accounts/login/"])
def test_our_pages_carry_no_inline_script_or_style(admin_client, url):
    page = admin_client.get(url).content.decode()
    assert not INLINE_SCRIPT.search(page)
    assert "<style" not in page and " style=" not in page
    assert " on" + "click=" not in page
    # htmx would inject its indicator styles inline; the page turns that off.
    assert '<meta name="htmx-config" content=\'{"includeIndicatorStyles": false}\'>' in page


def test_a_refused_form_shows_our_page_not_djangos_inline_styled_one(viewer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    response = client.post("/accounts/logout/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "That form had expired" in page
    assert "<style" not in page
    assert policy(response) == POLICY
