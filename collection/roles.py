"""The three roles, as Django groups: viewer (read), reviewer (review), admin (everything).

Groups and their permissions are (re)built after every migrate, so a new model's permissions
reach the right roles without a hand-written data migration.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

VIEWER, REVIEWER, ADMIN = "viewer", "reviewer", "admin"
ROLES = (VIEWER, REVIEWER, ADMIN)
APPS = ("collection", "exports")

# What a role may do, on top of the roles below it.
REVIEW_PERMS = ("collection.review_trainingexample", "collection.change_trainingexample")


def _perms(codenames: list[str]) -> list[Permission]:
    found = []
    for dotted in codenames:
        app_label, codename = dotted.split(".", 1)
        found += Permission.objects.filter(content_type__app_label=app_label, codename=codename)
    return found


def sync_roles(**_: Any) -> None:
    """Create the role groups and give them their permissions (idempotent)."""
    view = list(
        Permission.objects.filter(content_type__app_label__in=APPS, codename__startswith="view_")
    )
    everything = list(Permission.objects.filter(content_type__app_label__in=(*APPS, "auth")))
    wanted = {VIEWER: view, REVIEWER: view + _perms(list(REVIEW_PERMS)), ADMIN: everything}
    for name, perms in wanted.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(perms)


def assign_role(user: AbstractBaseUser, role: str) -> None:
    """Put a user in exactly one role; admins also get the admin site (is_staff)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    user.groups.set([Group.objects.get(name=role)])
    user.is_staff = role == ADMIN or user.is_superuser
    user.save(update_fields=["is_staff"])


def role_of(user: AbstractBaseUser | AnonymousUser) -> str | None:
    """The highest role a user holds (superusers are admins)."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return ADMIN
    names = set(user.groups.values_list("name", flat=True))
    return next((role for role in reversed(ROLES) if role in names), None)


def has_role(user: AbstractBaseUser | AnonymousUser, role: str) -> bool:
    held = role_of(user)
    return held is not None and ROLES.index(held) >= ROLES.index(role)


def role_required(role: str) -> Callable:
    """View decorator: 403 unless the user holds `role` or a higher one."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any):
            if not has_role(request.user, role):
                raise PermissionDenied(f"needs the {role} role")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def role_context(request: HttpRequest) -> dict[str, Any]:
    role = role_of(request.user) if hasattr(request, "user") else None
    return {
        "user_role": role,
        "can_review": role in (REVIEWER, ADMIN),
        "is_admin_role": role == ADMIN,
    }
