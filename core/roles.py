"""The two roles of this product.

``staff`` (Django group) may write; ``science`` (Django group) may only look.
Superusers administer and count as staff. A user in neither group can log in
but sees only public objects and can change nothing.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group

STAFF_GROUP = "staff"
SCIENCE_GROUP = "science"
ROLE_GROUPS = (STAFF_GROUP, SCIENCE_GROUP)


def _group_names(user) -> set[str]:
    cached = getattr(user, "_cm_group_names", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True)) if user.is_authenticated else set()
        user._cm_group_names = cached
    return cached


def is_staff_member(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """True for users who may write (group ``staff``, or superusers)."""
    if user is None or not user.is_authenticated or not getattr(user, "is_active", False):
        return False
    return bool(getattr(user, "is_superuser", False)) or STAFF_GROUP in _group_names(user)


def role_of(user) -> str:
    if user is None or not user.is_authenticated:
        return "anonymous"
    if user.is_superuser:
        return "admin"
    if STAFF_GROUP in _group_names(user):
        return "staff"
    if SCIENCE_GROUP in _group_names(user):
        return "science"
    return "viewer"


def ensure_role_groups() -> None:
    for name in ROLE_GROUPS:
        Group.objects.get_or_create(name=name)


def set_role(user, role: str) -> None:
    """Put ``user`` in exactly one of the role groups (``staff`` or ``science``)."""
    if role not in ROLE_GROUPS:
        raise ValueError(f"Unknown role {role!r}; expected one of {', '.join(ROLE_GROUPS)}")
    ensure_role_groups()
    user.groups.remove(*Group.objects.filter(name__in=ROLE_GROUPS).exclude(name=role))
    user.groups.add(Group.objects.get(name=role))
    if hasattr(user, "_cm_group_names"):
        del user._cm_group_names


def role_group_of(user) -> str | None:
    """The role group the user is in (``staff`` wins over ``science``), or None."""
    names = set(user.groups.filter(name__in=ROLE_GROUPS).values_list("name", flat=True))
    return STAFF_GROUP if STAFF_GROUP in names else (SCIENCE_GROUP if SCIENCE_GROUP in names else None)


def clear_role(user) -> None:
    """Take the user out of both role groups (they may still log in and see public objects)."""
    user.groups.remove(*Group.objects.filter(name__in=ROLE_GROUPS))
    if hasattr(user, "_cm_group_names"):
        del user._cm_group_names
