"""Shared pieces of the tag-table tests: a table made through the real service, and demo-repo ids."""

from __future__ import annotations

from typing import Any

from tagging.models import TagRow, TagRowChange, TagTable
from tagging.services.tagtables import tagtable_create

NIGHT = 20251121

COLUMNS: list[dict[str, Any]] = [
    {"name": "seeing", "type": "float", "unit": "arcsec", "description": "FWHM of the PSF", "required": True},
    {"name": "n_sat", "type": "int", "description": "saturated stars"},
    {"name": "comment", "type": "string"},
    {"name": "dome_open", "type": "bool"},
    {"name": "quality", "type": "enum", "enum_values": ["good", "wonky", "junk"]},
    {"name": "checked_at", "type": "datetime"},
]


def exposure_id(seq: int, day_obs: int = NIGHT) -> int:
    return day_obs * 100_000 + seq


def key_of(seq: int, day_obs: int = NIGHT) -> str:
    return f"instrument=DemoCam,exposure={exposure_id(seq, day_obs)}"


def make_table(user, *, name: str = "psf-wonky", columns=None, **extra) -> TagTable:
    return tagtable_create(
        user=user,
        repo_label="demo",
        name=name,
        key_dimensions=extra.pop("key_dimensions", ["exposure"]),
        columns=COLUMNS if columns is None else columns,
        polarity=extra.pop("polarity", "reject"),
        purpose=extra.pop("purpose", "do not use for PSF work"),
        **extra,
    )


def values_of(table: TagTable, key: str) -> dict[str, Any]:
    """A stored row's values by column name (retired columns included)."""
    names = {c.key: c.name for c in table.columns.all()}
    row = TagRow.objects.get(table=table, key=key)
    return {names[k]: v for k, v in row.values.items()}


def assert_no_rows(table: TagTable) -> None:
    assert TagRow.objects.filter(table=table).count() == 0
    assert TagRowChange.objects.filter(table=table).count() == 0
    table.refresh_from_db()
    assert table.row_count == 0
