"""Tag tables, rows and flags for the selection tests, made through the real services (so rows are checked
against the registry and their history written, as in production)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from tagging.models import ExposureFlag, TagColumn, TagRow, TagTable
from tagging.services.flags import flag_add, flag_invalidate
from tagging.services.tagtables import tag_column_retire, tag_rows_upsert, tagtable_create


def make_tag_table(
    *, owner, repo, name: str, key_dimensions: list[str], columns: list[tuple], visibility: str = "private"
) -> TagTable:
    """columns: (name, type[, enum_values][, retired]) in order."""
    specs = [
        {"name": spec[0], "type": spec[1], "enum_values": spec[2] if len(spec) > 2 and spec[2] else []}
        for spec in columns
    ]
    table = tagtable_create(
        user=owner,
        repo_label=repo.label,
        name=name,
        key_dimensions=key_dimensions,
        columns=specs,
        purpose="test",
        visibility=visibility,
    )
    for spec, column in zip(columns, table.columns.order_by("position", "pk"), strict=True):
        if len(spec) > 3 and spec[3]:
            tag_column_retire(user=owner, table_id=table.pk, column_key=column.key, reason="test")
    table.refresh_from_db()
    return table


def add_tag_rows(table: TagTable, rows: list[tuple[dict[str, Any], dict[str, Any]]], *, user) -> None:
    """rows: (data ID, values by column NAME). Retired columns are written before they are retired, so a
    table with retired columns gets its rows through a temporary un-retire."""
    retired = list(table.columns.filter(retired__isnull=False))
    for column in retired:
        tag_column_retire(user=user, table_id=table.pk, column_key=column.key, retire=False, reason="test rows")
    tag_rows_upsert(
        user=user, table_id=table.pk, rows=[{**data_id, **values} for data_id, values in rows], reason="test rows"
    )
    for column in retired:
        tag_column_retire(user=user, table_id=table.pk, column_key=column.key, reason="test rows")


def add_flag(
    *, exposure, flag: str = "junk", is_valid: bool = True, user_id: str = "alice", text: str = "dome light on"
) -> ExposureFlag:
    user = User.objects.get(username=user_id)
    made = flag_add(
        user=user,
        repo_label=exposure.repo.label,
        message_text=text,
        exposure_flag=flag,
        instrument=exposure.instrument,
        exposure=exposure.exposure_id,
    )
    if not is_valid:
        made = flag_invalidate(user=user, flag_id=made.pk)
    return made


# --- plain rows, for tests of the condition language's SQL alone (no registry: made-up exposure ids) ---------


def make_plain_tag_table(*, owner, repo, name: str, key_dimensions: list[str], columns: list[tuple]) -> TagTable:
    """columns: (name, type[, enum_values][, retired]) in order; keys are c1, c2, ..."""
    table = TagTable.objects.create(
        name=name, repo=repo, owner=owner, key_dimensions=key_dimensions, purpose="test", next_column_key=1
    )
    for i, spec in enumerate(columns, start=1):
        TagColumn.objects.create(
            table=table,
            key=f"c{i}",
            name=spec[0],
            type=spec[1],
            enum_values=spec[2] if len(spec) > 2 and spec[2] else [],
            retired=timezone.now() if len(spec) > 3 and spec[3] else None,
            position=i,
        )
    return table


def add_plain_tag_rows(table: TagTable, rows: list[tuple[dict[str, Any], dict[str, Any]]], *, user) -> None:
    """rows: (data ID, values by column NAME), stored as they are."""
    by_name = {c.name: c.key for c in table.columns.all()}
    TagRow.objects.bulk_create(
        TagRow(
            table=table,
            key=",".join(f"{k}={v}" for k, v in data_id.items()),
            updated_by=user,
            values={by_name[n]: v for n, v in values.items()},
            **data_id,
        )
        for data_id, values in rows
    )
