"""What the exposure page shows besides the metadata: tag-table rows and DataID sets that hold the exposure.

Each section has one selector, so a change of storage (e.g. of DataID-set rows) is adapted in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery

from .models import DataIdRow, DataIdSet, DataIdSetVersion, Exposure, TagColumn, TagRow, TagTable


def _rows_of(exposure: Exposure) -> Q:
    """Rows keyed by this exposure, or by its one-to-one visit, of its instrument."""
    condition = Q(exposure=exposure.exposure_id)
    if exposure.visit_id is not None:
        condition |= Q(visit=exposure.visit_id)
    return condition & (Q(instrument=exposure.instrument) | Q(instrument__isnull=True))


@dataclass
class TagRowView:
    table: TagTable
    key: str
    values: list[tuple[str, Any, str]]  # (column name, value, unit)
    updated: Any


def exposure_tag_rows(*, user, exposure: Exposure) -> list[TagRowView]:
    """Rows of the tag tables ``user`` may see that are about this exposure (or its visit), values by column name.

    Two queries whatever the number of rows and tables."""
    rows = list(
        TagRow.objects.filter(table__in=TagTable.objects.restrict(user, "view").filter(repo_id=exposure.repo_id))
        .filter(_rows_of(exposure))
        .select_related("table")
        .order_by("table__name", "key")
    )
    if not rows:
        return []
    columns: dict[int, list[TagColumn]] = {}
    for column in TagColumn.objects.filter(table_id__in={r.table_id for r in rows}, retired__isnull=True).order_by(
        "position", "pk"
    ):
        columns.setdefault(column.table_id, []).append(column)
    return [
        TagRowView(
            table=r.table,
            key=r.key,
            values=[(c.name, r.values.get(c.key), c.unit) for c in columns.get(r.table_id, [])],
            updated=r.updated,
        )
        for r in rows
    ]


def exposure_dataid_sets(*, user, exposure: Exposure) -> QuerySet[DataIdSetVersion]:
    """The latest versions of the DataID sets ``user`` may see that hold this exposure (or its visit), each with
    ``matching``: how many of its data IDs are about it (one per detector, typically). One query."""
    from .dataids import storage

    # The chunks' zone map (min/max exposure and visit per chunk) names the candidate versions cheaply.
    candidates = storage.versions_containing(exposure.instrument, exposure=exposure.exposure_id)
    if exposure.visit_id is not None:
        candidates |= storage.versions_containing(exposure.instrument, visit=exposure.visit_id)
    latest = DataIdSetVersion.objects.filter(dataid_set=OuterRef("dataid_set")).order_by("-number").values("pk")[:1]
    rows = DataIdRow.objects.filter(version=OuterRef("pk")).filter(_rows_of(exposure))
    matching = rows.order_by().values("version").annotate(n=Count("pk")).values("n")[:1]
    return (
        DataIdSetVersion.objects.filter(
            dataid_set__in=DataIdSet.objects.restrict(user, "view").filter(repo_id=exposure.repo_id)
        )
        .filter(pk=Subquery(latest), pk__in=candidates)
        .filter(Exists(rows))
        .annotate(matching=Subquery(matching))
        .select_related("dataid_set", "dataid_set__owner")
        .order_by("dataid_set__name")
    )
