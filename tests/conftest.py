from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from collection.roles import ADMIN, REVIEWER, VIEWER, assign_role, sync_roles


def _user(username: str, role: str) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", "password")
    assign_role(user, role)
    return user


@pytest.fixture
def roles(db) -> None:
    # Groups are made after migrate; transactional tests flush them, so make sure they exist.
    sync_roles()


@pytest.fixture
def admin_user(roles) -> User:
    return _user("alice", ADMIN)


@pytest.fixture
def reviewer(roles) -> User:
    return _user("bob", REVIEWER)


@pytest.fixture
def viewer(roles) -> User:
    return _user("charlie", VIEWER)
