"""Per-user and per-group sharing with django-guardian, the same for every shareable model."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group as AuthGroup
from django.core.exceptions import ValidationError
from django.db.models import Model, Q
from guardian.shortcuts import assign_perm, remove_perm

ACTIONS = ("view", "change")


def shared_with_q(user, codename: str, user_perm_model: type[Model], group_perm_model: type[Model]) -> Q:
    """Objects shared with ``user`` (directly or through one of their groups) for ``codename``."""
    groups = AuthGroup.objects.filter(user=user).values("pk")
    return Q(
        pk__in=user_perm_model.objects.filter(user=user, permission__codename=codename).values("content_object_id")  # type: ignore[attr-defined]
    ) | Q(
        pk__in=group_perm_model.objects.filter(group__in=groups, permission__codename=codename).values(  # type: ignore[attr-defined]
            "content_object_id"
        )
    )


def share_object(obj: Model, *, username: str | None, group: str | None, permission: str, grant: bool) -> str:
    """Grant or revoke ``permission`` (view or change) on ``obj`` for one user or one group.

    Change implies view (and revoking change revokes view too). Returns what was done, in words.
    """
    if permission not in ACTIONS:
        raise ValidationError({"permission": "Must be 'view' or 'change'."})
    if bool(username) == bool(group):
        raise ValidationError({"username": "Give exactly one of a username or a group."})
    target: Any
    if username:
        target = get_user_model().objects.filter(username=username, is_active=True).first()
        if target is None:
            raise ValidationError({"username": f"No active user {username!r}."})
        label = f"user {username}"
    else:
        target = AuthGroup.objects.filter(name=group).first()
        if target is None:
            raise ValidationError({"group": f"No group {group!r}."})
        label = f"group {group}"
    model_name = obj._meta.model_name
    perms = [f"{permission}_{model_name}"] + ([f"view_{model_name}"] if permission == "change" else [])
    for perm in perms:
        (assign_perm if grant else remove_perm)(perm, target, obj)
    return f"{permission} {'granted' if grant else 'revoked'} for {label}"


def restrict_shared(queryset, user, action: str, *, user_perm_model: type[Model], group_perm_model: type[Model]):
    """The one permission gate of an owned, shareable model with a ``visibility`` of private or public.

    ``change``: staff who own the object or were given change on it (directly or through a group).
    ``view``: those, plus whoever was given view, plus every logged-in user for a public object.
    Superusers see and change everything; anonymous and inactive users nothing."""
    from core.roles import is_staff_member

    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}")
    if user is None or not user.is_authenticated or not user.is_active:
        return queryset.none()
    if user.is_superuser:
        return queryset
    if action == "change" and not is_staff_member(user):
        return queryset.none()
    name = queryset.model._meta.model_name
    editors = Q(owner=user) | shared_with_q(user, f"change_{name}", user_perm_model, group_perm_model)
    if action == "change":
        return queryset.filter(editors)
    viewers = shared_with_q(user, f"view_{name}", user_perm_model, group_perm_model)
    return queryset.filter(editors | viewers | Q(visibility="public"))
