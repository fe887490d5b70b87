"""The three roles, as Django groups: viewer (read), reviewer (review), admin (everything).

Groups and their permissions are (re)built after every migrate, so a new model's permissions
reach the right roles without a hand-written data migration.

Pages check permissions, never role names: a guarded view says what it needs with one
decorator, and templates ask the same questions through `role_context`.

    @require_POST
    @require_perm(REVIEW)
    def example_review(request: HtmxHttpRequest, pk: int) -> HttpResponse: ...
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from functools import wraps
from typing import Any

from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

VIEWER, REVIEWER, ADMIN = "viewer", "reviewer", "admin"
ROLES = (VIEWER, REVIEWER, ADMIN)
APPS = ("collection", "exports")

# What the guarded pages need.
REVIEW = "collection.review_trainingexample"  # review an example (reviewer)
IMPORT = "collection.add_importupload"  # upload transcripts to import (reviewer)
GENERATE = "collection.add_generationbatch"  # start, cancel and resume batches (admin)
ADD_TEMPLATE = "collection.add_task"  # upload task templates (admin)

# What a role may do, on top of the roles below it.
REVIEW_PERMS = (REVIEW, "collection.change_trainingexample", IMPORT)

View = Callable[..., HttpResponse]


def _perms(codenames: list[str]) -> list[Permission]:
    found: list[Permission] = []
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
        group, _created = Group.objects.get_or_create(name=name)
        group.permissions.set(perms)


def assign_role(user: User, role: str) -> None:
    """Put a user in exactly one role; admins also get the admin site (is_staff)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    user.groups.set([Group.objects.get(name=role)])
    user.is_staff = role == ADMIN or user.is_superuser
    user.save(update_fields=["is_staff"])


def role_of(user: User | AnonymousUser) -> str | None:
    """The highest role a user holds (superusers are admins), for display."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return ADMIN
    names = set(user.groups.values_list("name", flat=True))
    return next((role for role in reversed(ROLES) if role in names), None)


def signed_in_user(request: HttpRequest) -> User:
    """The user making a request that only signed-in users reach (a guarded view, the admin)."""
    if not request.user.is_authenticated:
        raise PermissionDenied("sign in first")
    return request.user


def require_perm(perm: str, *, methods: Collection[str] | None = None) -> Callable[[View], View]:
    """View decorator: 403 unless the user has `perm`.

    With `methods`, only requests with those methods are checked: a page everyone may read
    but only some may post to.
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            guarded = methods is None or request.method in methods
            if guarded and not request.user.has_perm(perm):
                raise PermissionDenied(f"needs the {perm} permission")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def role_context(request: HttpRequest) -> dict[str, Any]:
    """What the signed-in user may do, asked the same way the views ask it."""
    user = getattr(request, "user", None) or AnonymousUser()
    return {
        "user_role": role_of(user),
        "can_review": user.has_perm(REVIEW),
        "can_import": user.has_perm(IMPORT),
        "can_generate": user.has_perm(GENERATE),
        "can_add_templates": user.has_perm(ADD_TEMPLATE),
        "is_admin_role": user.has_perms((GENERATE, ADD_TEMPLATE)),
    }
