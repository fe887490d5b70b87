"""The health check: public, JSON, read-only."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_the_health_check_answers_without_a_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_the_health_check_only_answers_get(client):
    assert client.post("/healthz").status_code == 405
