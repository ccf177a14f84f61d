"""Count, preview, freeze, re-run and diff selections (the writes and reads behind the page, API and CLI)."""

from __future__ import annotations

import copy
import time
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.http import Http404

from core.errors import InputError
from core.roles import is_staff_member

from ..models import DataIdSet, DataIdSetVersion, Exposure, SourceKind
from .compile import PREVIEW_ROWS, CompiledSelection, compile_recipe, dataid_set_rows
from .recipe import describe_sample, describe_term, normalize_recipe
from .terms import term_kind

DIFF_EXAMPLES = 10


class EmptySelection(InputError):
    """A selection that selects nothing was not stored."""


def _fetch(sql: str, params: list[Any]) -> list[tuple]:
    # Selections are many small index probes whose row counts PostgreSQL cannot estimate (conditions on
    # JSON values): it then over-costs them and spends ~80 ms compiling them with JIT, more than the
    # query itself takes (see benchmarks/NOTES.md). So no JIT for these queries.
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        return cursor.fetchall()


def _count(compiled: CompiledSelection) -> int:
    if compiled.recipe.get("sample"):
        sql, params = compiled.result_sql()
        return _fetch(f"SELECT COUNT(*) FROM ({sql}) AS selection", params)[0][0]
    return _fetch(*compiled.count_sql())[0][0]


def _preview(compiled: CompiledSelection, limit: int = PREVIEW_ROWS) -> list[dict[str, Any]]:
    sql, params = compiled.result_sql()
    keys = compiled.keys
    on = "x.exposure = e.exposure_id" if "exposure" in keys else "x.visit = e.visit_id"
    order = ", ".join(f"x.{k}" for k in keys)
    rows = _fetch(
        f"SELECT {', '.join(f'x.{k}' for k in keys)}, e.obs_id, e.day_obs, e.band, e.physical_filter "
        f"FROM ({sql}) AS x JOIN {Exposure._meta.db_table} e ON e.repo_id = %s AND e.instrument = x.instrument "
        f"AND {on} ORDER BY {order} LIMIT %s",
        [*params, compiled.repo.pk, limit],
    )
    names = [*keys, "obs_id", "day_obs", "band", "physical_filter"]
    return [dict(zip(names, row, strict=True)) for row in rows]


def selection_compile(*, user, recipe: dict[str, Any]) -> CompiledSelection:
    """Validate and compile a recipe as ``user`` sees the data (login required)."""
    if user is None or not user.is_authenticated:
        raise PermissionDenied("Log in to build selections.")
    return compile_recipe(normalize_recipe(recipe), user=user)


def selection_count(*, user, recipe: dict[str, Any], per_term: bool = True, preview: bool = True) -> dict[str, Any]:
    """The size of a selection, the count left after each term, and its first data IDs (a read: anyone
    logged in who may see the tables and sets it names)."""
    started = time.perf_counter()
    compiled = selection_compile(user=user, recipe=recipe)
    terms = []
    count = None
    if per_term:
        start = _fetch(*compiled.count_sql(0))[0][0]
        stages = dict(_fetch(*compiled.funnel_sql()))
        n_terms = len(compiled.terms)
        for i, (term, predicate) in enumerate(zip(compiled.recipe["terms"], compiled.terms, strict=True)):
            terms.append(
                {
                    "index": i,
                    "label": term.get("label") or describe_term(term),
                    "mode": term["mode"],
                    "kind": term["kind"],
                    "engine": predicate.engine,
                    # dropped by a later term (stage > i) or kept by all (stage = n_terms)
                    "after": sum(n for stage, n in stages.items() if stage > i),
                    **({"note": predicate.resolved["butler_reason"]} if predicate.engine == "butler" else {}),
                }
            )
        if not compiled.recipe.get("sample"):
            count = stages.get(n_terms, 0) if n_terms else start
    result: dict[str, Any] = {
        "recipe": compiled.recipe,
        "dimensions": compiled.keys,
        "count": _count(compiled) if count is None else count,
        "terms": terms,
        "sample": describe_sample(compiled.recipe.get("sample")),
    }
    if per_term:
        result["start"] = start
    if preview:
        result["preview"] = _preview(compiled)
    result["seconds"] = round(time.perf_counter() - started, 4)
    return result


def _resolved_recipe(compiled: CompiledSelection) -> dict[str, Any]:
    """The recipe as run: set versions pinned, the seed recorded, table ids noted (for provenance)."""
    recipe = copy.deepcopy(compiled.recipe)
    for term, predicate in zip(recipe["terms"], compiled.terms, strict=True):
        kind = term_kind(term["kind"])
        if kind is not None and kind.pin is not None:
            kind.pin(term, predicate)
    return recipe


def _records(compiled: CompiledSelection) -> tuple[list[str], list[dict[str, Any]]]:
    sql, params = compiled.result_sql()
    keys = compiled.keys
    return keys, [dict(zip(keys, row, strict=True)) for row in _fetch(sql, params)]


def selection_data_ids(*, user, recipe: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]], dict[str, Any]]:
    """What a recipe selects, for a service that stores it some other way than as a DataID set (a reject tag
    table): (key names, data IDs, the recipe as run, with what it resolved to pinned, for provenance)."""
    compiled = selection_compile(user=user, recipe=recipe)
    keys, records = _records(compiled)
    return keys, records, _resolved_recipe(compiled)


@transaction.atomic
def selection_freeze(
    *,
    user,
    recipe: dict[str, Any],
    name: str,
    reason: str,
    description: str = "",
    visibility: str | None = None,
) -> DataIdSetVersion:
    """Store a selection as a DataID set (a new set, or a new version of the user's set of that name)
    whose provenance records the whole recipe, so that it can be re-run and diffed. Staff only."""
    from ..services import UploadSource, dataidset_create

    if not is_staff_member(user):
        raise PermissionDenied("Only staff members can freeze selections into DataID sets.")
    compiled = selection_compile(user=user, recipe=recipe)
    keys, records = _records(compiled)
    if not records:
        raise EmptySelection("The selection is empty; nothing was stored.", field="recipe")
    resolved = _resolved_recipe(compiled)
    version = dataidset_create(
        user=user,
        repo_label=compiled.repo.label,
        name=name,
        reason=reason,
        description=description,
        visibility=visibility,
        source=UploadSource(kind="records", records=records, dimensions=keys),
        comment="frozen selection",
    )
    source = {
        "recipe": resolved,
        "summary": [describe_term(t) for t in resolved["terms"]]
        + ([describe_sample(resolved["sample"])] if resolved.get("sample") else []),
        "engines": {p.label: p.engine for p in compiled.terms if p.engine != "mirror"},
        "selected": len(records),
    }
    DataIdSetVersion.objects.filter(pk=version.pk).update(source_kind=SourceKind.SELECTION, source=source)
    version.refresh_from_db()
    return version


def frozen_selection(*, user, version_id: int) -> DataIdSetVersion:
    """A version made by freezing a selection, if ``user`` may see its set (else 404)."""
    version = (
        DataIdSetVersion.objects.select_related("dataid_set__repo")
        .filter(pk=version_id, dataid_set__in=DataIdSet.objects.restrict(user, "view"))
        .first()
    )
    if version is None:
        raise Http404("No such DataID set version.")
    if version.source_kind != SourceKind.SELECTION:
        raise InputError(
            f"{version.dataid_set.name} v{version.number} was not made by freezing a selection.", field="version"
        )
    return version


def selection_rerun(*, user, version_id: int) -> dict[str, Any]:
    """Run a frozen selection's recipe again (same set versions, same seed) and compare it with what was
    frozen: counts of data IDs added and removed since, with examples."""
    version = frozen_selection(user=user, version_id=version_id)
    compiled = selection_compile(user=user, recipe=version.source["recipe"])
    keys = compiled.keys
    if sorted(version.dimensions) != sorted(keys):
        raise InputError(
            f"The frozen set has dimensions {version.dimensions}, the recipe now gives {keys}.", field="recipe"
        )
    current_sql, current_params = compiled.result_sql()
    from_sql, where_sql, frozen_params = dataid_set_rows(version, "s")
    columns = ", ".join(keys)
    frozen_sql = f"SELECT {', '.join(f's.{k}' for k in keys)} FROM {from_sql} WHERE {where_sql}"

    def side(first: tuple[str, list], second: tuple[str, list]) -> tuple[int, list[dict[str, Any]]]:
        sql = f"SELECT * FROM ({first[0]}) AS a EXCEPT SELECT * FROM ({second[0]}) AS b"
        params = [*first[1], *second[1]]
        count = _fetch(f"SELECT COUNT(*) FROM ({sql}) AS d", params)[0][0]
        rows = _fetch(f"SELECT * FROM ({sql}) AS d ORDER BY {columns} LIMIT %s", [*params, DIFF_EXAMPLES])
        return count, [dict(zip(keys, row, strict=True)) for row in rows]

    current = (f"SELECT {columns} FROM ({current_sql}) AS c", current_params)
    frozen = (frozen_sql, frozen_params)
    added, added_examples = side(current, frozen)
    removed, removed_examples = side(frozen, current)
    now = _fetch(f"SELECT COUNT(*) FROM ({current_sql}) AS c", current_params)[0][0]
    return {
        "dataid_set": version.dataid_set.name,
        "dataid_set_id": version.dataid_set_id,
        "version": version.number,
        "frozen_count": version.count,
        "current_count": now,
        "added": added,
        "removed": removed,
        "added_examples": added_examples,
        "removed_examples": removed_examples,
        "unchanged": added == 0 and removed == 0,
    }


# --- campaign inputs ---------------------------------------------------------------------------------


def campaign_selection_version(*, repo_label: str, name: str, number: int | None) -> DataIdSetVersion:
    """The set version a campaign's ``input_selection`` names (latest if no number), or ValidationError."""
    from django.core.exceptions import ValidationError

    version = (
        DataIdSetVersion.objects.filter(dataid_set__repo__label=repo_label, dataid_set__name=name)
        .select_related("dataid_set")
        .order_by("-number")
    )
    found = version.first() if number is None else version.filter(number=number).first()
    if found is None:
        raise ValidationError(f"No DataID set {name!r}{f' v{number}' if number else ''} in repo {repo_label}.")
    if "exposure" not in found.dimensions and "visit" not in found.dimensions:
        raise ValidationError(
            f"{name} holds ({', '.join(found.dimensions)}); campaign inputs need exposures or visits."
        )
    return found
