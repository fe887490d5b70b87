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
from django.shortcuts import render

VIEWER, REVIEWER, ADMIN = "viewer", "reviewer", "admin"
ROLES = (VIEWER, REVIEWER, ADMIN)
APPS = ("collection", "exports")

# What the guarded pages need.
REVIEW = "collection.review_trainingexample"  # review an example (reviewer)
IMPORT = "collection.add_importupload"  # upload transcripts to import (reviewer)
GENERATE = "collection.add_generationbatch"  # start, cancel and resume batches (admin)
ADD_TEMPLATE = "collection.add_task"  # upload task templates (admin)
ADD_TASK = "collection.add_task"  # create a task (admin)
CHANGE_TASK = "collection.change_task"  # edit a task (admin)
COLLECT = "collection.add_collectionjob"  # start collecting a task (admin)
MANAGE_JOBS = "collection.change_collectionjob"  # cancel or retry a collection job (admin)

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


def has_no_role(user: User | AnonymousUser) -> bool:
    """A signed-in user who may do nothing at all: in no role and granted no permission.

    Asked of permissions, like the pages (a user given one permission by hand is not lost),
    and from the permission cache the menu fills anyway: no extra query.
    """
    return user.is_authenticated and not user.is_superuser and not user.get_all_permissions()


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
        "can_add_tasks": user.has_perm(ADD_TASK),
        "can_change_tasks": user.has_perm(CHANGE_TASK),
        "can_collect": user.has_perm(COLLECT),
        "can_manage_jobs": user.has_perm(MANAGE_JOBS),
        "is_admin_role": user.has_perms((GENERATE, ADD_TEMPLATE)),
        "has_role": not has_no_role(user),
    }


# Pages a signed-in user without a role still reaches: signing in and out. Public views
# (marked `login_not_required`: health, the admin's login) stay reachable too.
ROLE_FREE_VIEWS = frozenset({"login", "logout"})


class NoRoleMiddleware:
    """Show a signed-in user without a role a page telling them to ask an admin for one,
    instead of any data page (status 403). Goes after the authentication middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: View, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        # Public and role-free views first: they never load the session, the user or the
        # permissions just to be let through (a load balancer's /healthz costs one query).
        if not getattr(view, "login_required", True):
            return None
        match = request.resolver_match
        if match is not None and match.url_name in ROLE_FREE_VIEWS:
            return None
        if not has_no_role(request.user):
            return None
        return render(request, "no_role.html", status=403)
