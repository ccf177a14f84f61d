"""Plain-row factories for the selection tests.

TEMPORARY ORM FACTORIES: the tag-table and exposure-flag services are being written on other branches
at the same time. Once they are merged, switch ``make_tag_table``/``add_tag_rows``/``add_flag`` to
those services (tag_table_create, tag_rows_upsert, exposure_flag_create); the tests' assertions stay.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from tagging.models import ExposureFlag, TagColumn, TagRow, TagTable


def make_tag_table(
    *, owner, repo, name: str, key_dimensions: list[str], columns: list[tuple], visibility: str = "private"
) -> TagTable:
    """columns: (name, type[, enum_values][, retired]) in order; keys are c1, c2, ..."""
    table = TagTable.objects.create(
        name=name, repo=repo, owner=owner, key_dimensions=key_dimensions, visibility=visibility, purpose="test"
    )
    for i, spec in enumerate(columns, start=1):
        name_, type_ = spec[0], spec[1]
        TagColumn.objects.create(
            table=table,
            key=f"c{i}",
            name=name_,
            type=type_,
            enum_values=spec[2] if len(spec) > 2 and spec[2] else [],
            retired=timezone.now() if len(spec) > 3 and spec[3] else None,
            position=i,
        )
    TagTable.objects.filter(pk=table.pk).update(next_column_key=len(columns) + 1)
    return table


def add_tag_rows(table: TagTable, rows: list[tuple[dict[str, Any], dict[str, Any]]], *, user) -> None:
    """rows: (data ID with instrument/exposure/detector/visit, values by column NAME)."""
    by_name = {c.name: c.key for c in table.columns.all()}
    for data_id, values in rows:
        key = ",".join(f"{k}={data_id[k]}" for k in ("instrument", "exposure", "visit", "detector") if k in data_id)
        TagRow.objects.create(
            table=table,
            key=key,
            updated_by=user,
            values={by_name[n]: v for n, v in values.items()},
            **data_id,
        )
    TagTable.objects.filter(pk=table.pk).update(row_count=table.rows.count())


def add_flag(
    *, exposure, flag: str = "junk", is_valid: bool = True, user_id: str = "alice", text: str = "dome light on"
) -> ExposureFlag:
    return ExposureFlag.objects.create(
        repo=exposure.repo,
        instrument=exposure.instrument,
        obs_id=exposure.obs_id,
        day_obs=exposure.day_obs,
        seq_num=exposure.seq_num,
        exposure=exposure.exposure_id,
        message_text=text,
        user_id=user_id,
        exposure_flag=flag,
        is_valid=is_valid,
        date_added=timezone.now(),
    )
