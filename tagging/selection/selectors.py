"""Reads for the selection builder page: what the user may combine (repos, sets, tag tables and columns)."""

from __future__ import annotations

from typing import Any

from ..models import ButlerRepo, DataIdSet, DataIdSetVersion, SourceKind, TagColumn, TagTable
from .recipe import BAD_DATA_STATUSES, DIMENSION_CHOICES, FLAG_VALUES, STRATIFY_FIELDS, describe_sample, describe_term
from .terms import term_kinds


def selection_builder_choices(*, user) -> dict[str, Any]:
    """Everything the builder's inputs offer, as plain JSON-able data, limited to what ``user`` may see."""
    visible = DataIdSet.objects.restrict(user, "view")
    numbers: dict[int, list[int]] = {}
    for set_id, number in DataIdSetVersion.objects.filter(dataid_set__in=visible).values_list("dataid_set", "number"):
        numbers.setdefault(set_id, []).append(number)
    sets = [
        {"repo": s.repo.label, "name": s.name, "versions": sorted(numbers.get(s.pk, []))}
        for s in visible.select_related("repo").order_by("repo__label", "name")
    ]
    tables = list(TagTable.objects.restrict(user, "view").select_related("repo").order_by("repo__label", "name"))
    columns: dict[int, list[dict[str, Any]]] = {}
    for c in TagColumn.objects.filter(table__in=tables).order_by("table", "position", "pk"):
        columns.setdefault(c.table_id, []).append(
            {"name": c.name, "type": c.type, "retired": c.retired is not None, "enum_values": c.enum_values}
        )
    return {
        "repos": list(ButlerRepo.objects.order_by("label").values_list("label", flat=True)),
        "dimensions": [list(d) for d in DIMENSION_CHOICES],
        "sets": sets,
        "tag_tables": [
            {
                "repo": t.repo.label,
                "name": t.name,
                "polarity": t.polarity,
                "key_dimensions": t.key_dimensions,
                "columns": columns.get(t.pk, []),
            }
            for t in tables
        ],
        "flags": list(FLAG_VALUES),
        "bad_data": list(BAD_DATA_STATUSES),
        "stratify_fields": list(STRATIFY_FIELDS),
        # Every registered kind (other apps' too) and what each offers, for the page's "+ term" buttons.
        "term_kinds": [{"name": k.name, "label": k.label, "default_mode": k.default_mode} for k in term_kinds()],
        "kind_choices": {k.name: k.choices(user) for k in term_kinds() if k.choices is not None},
    }


def selection_explained(version: DataIdSetVersion) -> dict[str, Any] | None:
    """What a frozen selection selected and why, for pages (None if the version is not a selection)."""
    if version.source_kind != SourceKind.SELECTION:
        return None
    recipe = version.source.get("recipe") or {}
    return {
        "dimensions": recipe.get("dimensions", []),
        "terms": [{"mode": t["mode"], "kind": t["kind"], "text": describe_term(t)} for t in recipe.get("terms", [])],
        "sample": describe_sample(recipe.get("sample")),
        "engines": version.source.get("engines", {}),
        "recipe": recipe,
    }


def campaign_input_selection(*, user, campaign) -> dict[str, Any] | None:
    """What a campaign's input selection selected and why, for its page; the set is linked only for
    those who may see it."""
    ref = campaign.input_selection or {}
    if not ref:
        return None
    version = (
        DataIdSetVersion.objects.filter(
            dataid_set__repo__label=campaign.butler_repo_id,
            dataid_set__name=ref.get("dataid_set"),
            number=ref.get("version") or 0,
        )
        .select_related("dataid_set")
        .first()
    )
    if version is None:
        return {"name": ref.get("dataid_set"), "version": ref.get("version"), "missing": True}
    visible = DataIdSet.objects.restrict(user, "view").filter(pk=version.dataid_set_id).exists()
    return {
        "name": version.dataid_set.name,
        "version": version.number,
        "count": version.count,
        "set_id": version.dataid_set_id if visible else None,
        "selection": selection_explained(version) if visible else None,
        "reason": version.dataid_set.reason if visible else "",
    }
