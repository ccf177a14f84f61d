"""A campaign's include and exclude DataID sets: resolved into the data-ID table its groups are run with.

The campaign's inputs are (the intersection of its include sets — ``input_selection`` is one more — or
everything its data query selects when it has none) minus its exclude sets. That set of data IDs is written
once per launch as an ECSV file and passed to every group with ``pipetask --data-id-table`` (through BPS's
``extraQgraphOptions``); pipetask joins it with the group's ``where``. Set rows are read only through
:func:`tagging.selectors.dataidset_rows`.

All sets of a campaign are keyed alike (by exposure or by visit, checked in the definition); a set may also
carry detectors, then the table does too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from tagging.models import DataIdSet, DataIdSetVersion

SELECTION_TABLE_PREFIX = "dataid-sets"
SPLIT_TABLE_PREFIX = "split"


def set_refs(campaign) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(include refs, exclude refs); ``input_selection`` counts as the first include set."""
    include = [dict(r) for r in campaign.include_sets or []]
    if campaign.input_selection and campaign.input_selection not in include:
        include.insert(0, dict(campaign.input_selection))
    return include, [dict(r) for r in campaign.exclude_sets or []]


def _version(repo_label: str, ref: dict[str, Any], field_name: str) -> DataIdSetVersion:
    found = (
        DataIdSetVersion.objects.filter(
            dataid_set__repo__label=repo_label, dataid_set__name=ref["dataid_set"], number=ref["version"]
        )
        .select_related("dataid_set")
        .first()
    )
    if found is None:
        raise ValidationError({field_name: f"DataID set {ref['dataid_set']} v{ref['version']} no longer exists."})
    return found


def describe(campaign) -> str:
    """``include a@v1, b@v2; exclude c@v3`` (empty when the campaign has no sets)."""
    include, exclude = set_refs(campaign)
    parts = []
    if include:
        parts.append("include " + ", ".join(f"{r['dataid_set']}@v{r['version']}" for r in include))
    if exclude:
        parts.append("exclude " + ", ".join(f"{r['dataid_set']}@v{r['version']}" for r in exclude))
    return "; ".join(parts)


@dataclass
class ResolvedInputs:
    """The campaign's data IDs after its include and exclude sets."""

    dimensions: list[str]  # instrument, exposure|visit[, detector]
    rows: list[tuple]
    text: str
    keys: set[tuple] = field(default_factory=set)  # (instrument, exposure|visit) of the rows

    @property
    def key(self) -> str:
        return self.dimensions[1]


def _load(version: DataIdSetVersion, order: list[str], default_instrument: str) -> set[tuple]:
    from tagging.selectors import dataidset_rows

    dims = list(version.dimensions)
    index = [dims.index(d) if d in dims else None for d in order]
    return {
        tuple(row[i] if i is not None else default_instrument for i in index) for row in dataidset_rows(version=version)
    }


def resolve(
    campaign,
    universe: Callable[[], Iterable[tuple[str, int]]],
    detectors: Callable[[str], list[int]] | None = None,
) -> ResolvedInputs | None:
    """The campaign's data IDs after its sets, or None when it has no sets.

    ``universe()`` gives the (instrument, key) pairs the data query selects; asked only when there is no
    include set. ``detectors(instrument)`` gives an instrument's detectors; asked only when an exclude set
    has detectors and no include set does."""
    include_refs, exclude_refs = set_refs(campaign)
    if not include_refs and not exclude_refs:
        return None
    repo = campaign.butler_repo
    instrument = repo.default_instrument or ""
    include = [_version(repo.label, r, "include_sets") for r in include_refs]
    exclude = [_version(repo.label, r, "exclude_sets") for r in exclude_refs]
    everything = include + exclude
    key = "exposure" if "exposure" in everything[0].dimensions else "visit"
    if any(key not in v.dimensions for v in everything):
        raise ValidationError({"include_sets": "The sets of a campaign must all hold exposures or all hold visits."})
    with_detector = any("detector" in v.dimensions for v in everything)
    dims = ["instrument", key, *(["detector"] if with_detector else [])]

    rows: set[tuple]
    if include:
        by_key = [_load(v, dims[:2], instrument) for v in include if "detector" not in v.dimensions]
        by_detector = [_load(v, dims, instrument) for v in include if "detector" in v.dimensions]
        if by_detector:
            rows = set.intersection(*by_detector)
            for keys in by_key:
                rows = {r for r in rows if r[:2] in keys}
        else:
            rows = set.intersection(*by_key)
    else:
        rows = set(universe())
    if with_detector and (not include or all("detector" not in v.dimensions for v in include)):
        if detectors is None:
            raise ValidationError({"exclude_sets": "An exclude set with detectors needs the instrument's detectors."})
        per_instrument: dict[str, list[int]] = {}
        expanded: set[tuple] = set()
        for inst, value in rows:
            ids = per_instrument.setdefault(inst, detectors(inst))
            expanded.update((inst, value, d) for d in ids)
        rows = expanded
    for version in exclude:
        if "detector" in version.dimensions:
            rows -= _load(version, dims, instrument)
        else:
            keys = _load(version, dims[:2], instrument)
            rows = {r for r in rows if r[:2] not in keys}
    ordered = sorted(rows)
    return ResolvedInputs(dimensions=dims, rows=ordered, text=describe(campaign), keys={r[:2] for r in ordered})


def write_table(campaign, resolved: ResolvedInputs) -> Path:
    """Write the resolved data IDs as ECSV (what ``--data-id-table`` reads) under the submit root."""
    from tagging.dataids.writers import ecsv_text

    folder = Path(settings.CM_SUBMIT_ROOT) / "inputs" / str(campaign.pk)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{SELECTION_TABLE_PREFIX}-v{campaign.version}.ecsv"
    meta = {"campaign": campaign.name, "sets": resolved.text, "rows": len(resolved.rows)}
    path.write_text(ecsv_text(resolved.dimensions, resolved.rows, meta=meta))
    return path


def is_sets_table(path: str) -> bool:
    return Path(path).name.startswith(SELECTION_TABLE_PREFIX + "-")


def write_split_table(campaign, step_name: str, group_name: str, table) -> Path:
    """Write one group's own data IDs (a chunk of a ``dataid_set`` split, an ``lsst_adapter.estimate.DataIdTable``)
    as ECSV beside the campaign's sets table."""
    from tagging.dataids.writers import ecsv_text

    folder = Path(settings.CM_SUBMIT_ROOT) / "inputs" / str(campaign.pk)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{SPLIT_TABLE_PREFIX}-{step_name}-{group_name}-v{campaign.version}.ecsv"
    meta = {"campaign": campaign.name, "split": table.label, "rows": len(table.rows)}
    path.write_text(ecsv_text(table.dimensions, table.rows, meta=meta))
    return path


def is_split_table(path: str) -> bool:
    return Path(path).name.startswith(SPLIT_TABLE_PREFIX + "-")


def table_paths(value: str) -> list[str]:
    """The data-ID tables recorded on a group (one path per line: the sets' table, a metric input's)."""
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


def empty_table_problem(path: str) -> str | None:
    """Why a data-ID table cannot be used (missing, or no rows), or None: an empty table must fail the
    group, never be dropped (that would process everything)."""
    from astropy.table import Table

    file = Path(path)
    if not file.is_file():
        return f"the data-ID table {path} is missing"
    table = Table.read(str(file), format="ascii.ecsv")
    if len(table) == 0:
        sets = table.meta.get("sets") or table.meta.get("condition") or table.meta.get("split") or ""
        return f"the data-ID table {path} selects no data IDs" + (f" ({sets})" if sets else "")
    return None


def campaign_dataid_sets(*, user, campaign) -> list[dict[str, Any]]:
    """The include and exclude sets of a campaign for its page: name, version, count, and a link only for
    those who may see the set. (``input_selection`` has its own section on the page, with its recipe.)"""
    include = [dict(r) for r in campaign.include_sets or []]
    exclude = [dict(r) for r in campaign.exclude_sets or []]
    refs = [("include", r) for r in include] + [("exclude", r) for r in exclude]
    if not refs:
        return []
    versions = {
        (v.dataid_set.name, v.number): v
        for v in DataIdSetVersion.objects.filter(
            dataid_set__repo__label=campaign.butler_repo_id,
            dataid_set__name__in={r["dataid_set"] for _, r in refs},
        ).select_related("dataid_set")
    }
    visible = set(
        DataIdSet.objects.restrict(user, "view")
        .filter(pk__in={v.dataid_set_id for v in versions.values()})
        .values_list("pk", flat=True)
    )
    out = []
    for mode, ref in refs:
        version = versions.get((ref["dataid_set"], ref["version"]))
        out.append(
            {
                "mode": mode,
                "name": ref["dataid_set"],
                "version": ref["version"],
                "missing": version is None,
                "count": version.count if version else None,
                "dimensions": list(version.dimensions) if version else [],
                "set_id": version.dataid_set_id if version and version.dataid_set_id in visible else None,
            }
        )
    return out
