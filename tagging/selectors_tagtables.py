"""Reads of tag tables, always through the one gate ``TagTable.objects.restrict(user, action)``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from .models import (
    TagColumn,
    TagRow,
    TagRowChange,
    TagTable,
    TagTableEvent,
    TagTableGroupObjectPermission,
    TagTableUserObjectPermission,
)


def tagtable_list(
    *,
    user,
    repo_label: str | None = None,
    polarity: str | None = None,
    owner: str | None = None,
    q: str = "",
    name: str | None = None,
) -> QuerySet[TagTable]:
    qs = TagTable.objects.restrict(user, "view").select_related("repo", "owner")
    if repo_label:
        qs = qs.filter(repo__label=repo_label)
    if polarity:
        qs = qs.filter(polarity=polarity)
    if owner:
        qs = qs.filter(owner__username=owner)
    if name:
        qs = qs.filter(name=name)
    text = (q or "").strip()
    if text:
        qs = qs.filter(Q(name__icontains=text) | Q(description__icontains=text) | Q(purpose__icontains=text))
    return qs.order_by("-updated", "name")


def access_tagtable(user, pk: int | str, action: str = "view") -> TagTable:
    """The table, if ``user`` may ``action`` it: 404 if they may not see it, 403 if they may only look."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such tag table.") from None
    table = TagTable.objects.restrict(user, action).select_related("repo", "owner").filter(pk=pk).first()
    if table is None:
        if action != "view" and TagTable.objects.restrict(user, "view").filter(pk=pk).exists():
            raise PermissionDenied("You may view this tag table but not change it.")
        raise Http404("No such tag table.")
    return table


def can_change(user, table: TagTable) -> bool:
    return TagTable.objects.restrict(user, "change").filter(pk=table.pk).exists()


def tagtable_columns(*, table: TagTable, include_retired: bool = False) -> list[TagColumn]:
    qs = table.columns.all().order_by("position", "pk")
    if not include_retired:
        qs = qs.filter(retired__isnull=True)
    return list(qs)


def tagtable_column(*, table: TagTable, key_or_name: str) -> TagColumn:
    """One column of ``table`` by its key (``c3``) or its name: 404 if it has none (the column is in the URL)."""
    column = table.columns.filter(key=key_or_name).first() or table.columns.filter(name=key_or_name).first()
    if column is None:
        raise Http404(f"{table.name} has no column {key_or_name!r}.")
    return column


def tagtable_rows(*, table: TagTable, q: str = "") -> QuerySet[TagRow]:
    qs = table.rows.select_related("updated_by").order_by("key")
    if q.strip():
        qs = qs.filter(key__icontains=q.strip())
    return qs


def tagtable_row_changes(*, table: TagTable, key: str | None = None) -> QuerySet[TagRowChange]:
    qs = TagRowChange.objects.filter(table=table).select_related("user").order_by("-timestamp", "-pk")
    if key:
        qs = qs.filter(row_key=key)
    return qs


def tagtable_events(*, table: TagTable) -> QuerySet[TagTableEvent]:
    return table.events.select_related("user", "column").order_by("-timestamp", "-pk")


def tagtable_sharing(*, table: TagTable) -> dict[str, list[tuple[str, str]]]:
    users = TagTableUserObjectPermission.objects.filter(content_object=table).select_related("user", "permission")
    groups = TagTableGroupObjectPermission.objects.filter(content_object=table).select_related("group", "permission")

    def strongest(pairs: set[tuple[str, str]]) -> list[tuple[str, str]]:
        best: dict[str, str] = {}
        for who, perm in pairs:
            if best.get(who) != "change":
                best[who] = perm
        return sorted(best.items())

    return {
        "users": strongest({(p.user.username, p.permission.codename.split("_")[0]) for p in users}),
        "groups": strongest({(p.group.name, p.permission.codename.split("_")[0]) for p in groups}),
    }


def row_dict(row: TagRow, dimensions: list[str], columns: list[TagColumn]) -> dict[str, Any]:
    """A row as a person reads it: its data ID and its values by column name."""
    return {
        "key": row.key,
        "data_id": {d: getattr(row, d) for d in dimensions},
        "values": {c.name: row.values.get(c.key) for c in columns},
        "updated": row.updated,
        "updated_by": row.updated_by.username if row.updated_by_id else None,
    }


def tagtable_export_rows(
    *, table: TagTable, columns: list[TagColumn], chunk_size: int = 5000
) -> Iterator[tuple[list[Any], list[Any]]]:
    """(data-ID values, column values) of every row, in key order, streamed."""
    dims = list(table.key_dimensions)
    for values in table.rows.order_by("key").values_list(*dims, "values").iterator(chunk_size=chunk_size):
        stored = values[-1] or {}
        yield list(values[:-1]), [stored.get(c.key) for c in columns]


def changes_by_name(change: TagRowChange, names: dict[str, str]) -> list[tuple[str, Any, Any]]:
    """(column name, old, new) of a change, its values being stored by column key."""
    old, new = change.old or {}, change.new or {}
    keys = sorted(set(old) | set(new), key=lambda k: (int(k[1:]) if k[1:].isdigit() else 0, k))
    return [(names.get(k, k), old.get(k), new.get(k)) for k in keys]
