"""Planning: cutting a step into groups, freezing each group's ``where``, naming collections.

Pure helpers plus one registry query per campaign (the exposures its data query selects,
through :func:`lsst_adapter.dataids.query_data_ids`); nights and visits come from the
exposure mirror (``tagging.models.Exposure``), which is plain indexed SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from ..choices import SplitBy
from ..models import Campaign, Step, slug_safe

DEFAULT_SPLIT: dict[str, Any] = {"by": SplitBy.NIGHT.value}
DEFAULT_MAX_SIZE = 50


@dataclass(frozen=True)
class PlannedGroup:
    name: str
    where: str


def clean_split(value: Any) -> dict[str, Any]:
    """Validate a split rule; returns its normal form or raises ``ValidationError`` (key ``split``)."""
    if value in (None, "", {}):
        return dict(DEFAULT_SPLIT)
    if not isinstance(value, Mapping):
        raise ValidationError({"split": 'Must be a mapping such as {"by": "night"}.'})
    by = value.get("by", SplitBy.NIGHT.value)
    if by not in SplitBy.values:
        raise ValidationError({"split": f"'by' must be one of {', '.join(SplitBy.values)}, not {by!r}."})
    unknown = set(value) - {"by", "max_size", "groups"}
    if unknown:
        raise ValidationError({"split": f"Unknown keys: {', '.join(sorted(unknown))}."})
    out: dict[str, Any] = {"by": by}
    if by in (SplitBy.EXPOSURE, SplitBy.VISIT):
        size = value.get("max_size", DEFAULT_MAX_SIZE)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValidationError({"split": "max_size must be a positive integer."})
        out["max_size"] = size
    if by == SplitBy.LIST:
        groups = value.get("groups")
        if not isinstance(groups, list) or not groups:
            raise ValidationError({"split": 'A "list" split needs "groups": [{"name": ..., "where": ...}, ...].'})
        names: set[str] = set()
        cleaned = []
        for i, group in enumerate(groups):
            if not isinstance(group, Mapping) or not isinstance(group.get("name"), str):
                raise ValidationError({"split": f"groups[{i}] must be a mapping with a name and a where."})
            name, where = group["name"], group.get("where", "")
            try:
                slug_safe(name)
            except ValidationError as exc:
                raise ValidationError({"split": f"groups[{i}].name: {exc.messages[0]}"}) from None
            if name in names:
                raise ValidationError({"split": f"groups[{i}].name {name!r} is used twice."})
            if not isinstance(where, str) or not where.strip():
                raise ValidationError({"split": f"groups[{i}].where must be a non-empty Butler expression."})
            names.add(name)
            cleaned.append({"name": name, "where": where.strip()})
        out["groups"] = cleaned
    return out


def and_where(*parts: str) -> str:
    """``(a) AND (b)`` of the non-empty parts."""
    kept = [p.strip() for p in parts if p and p.strip()]
    if len(kept) == 1:
        return kept[0]
    return " AND ".join(f"({p})" for p in kept)


def base_where(campaign: Campaign) -> str:
    """The campaign's data query, with the repo's default instrument when it names none. Its DataID sets
    (include, exclude, input selection) are not in it: they travel as a data-ID table (``campaigns.inputs``)."""
    query = (campaign.data_query or "").strip()
    instrument = campaign.butler_repo.default_instrument
    if instrument and not re.search(r"\binstrument\b", query):
        return and_where(f"instrument = '{instrument}'", query)
    return query


def _in(column: str, values: Sequence[int]) -> str:
    return f"{column} IN ({', '.join(str(v) for v in values)})"


def _chunks(values: list[int], size: int) -> list[list[int]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def selected_exposures(campaign: Campaign) -> list[dict[str, Any]]:
    """The exposures the campaign selects (data query, then its DataID sets): ids from the registry,
    night and visit from the mirror."""
    return plan_inputs(campaign, need_exposures=True)[0] or []


def plan_inputs(campaign: Campaign, *, need_exposures: bool) -> tuple[list[dict[str, Any]] | None, Any]:
    """(exposures the campaign selects, or None when not needed; its resolved DataID sets, or None).

    The exposures are those of the data query kept by the sets (so that a split makes no group for data
    the sets leave out); the registry is asked once, and only when needed."""
    from tagging.models import Detector

    from .. import inputs

    queried: list[dict[str, Any]] | None = None

    def exposures() -> list[dict[str, Any]]:
        nonlocal queried
        if queried is None:
            queried = _query_exposures(campaign)
        return queried

    def universe() -> list[tuple[str, int]]:
        key = "exposure_id" if _set_key(campaign) == "exposure" else "visit_id"
        return [(e["instrument"], e[key]) for e in exposures() if e[key] is not None]

    def detectors(instrument: str) -> list[int]:
        return list(
            Detector.objects.filter(repo=campaign.butler_repo, instrument=instrument)
            .order_by("detector_id")
            .values_list("detector_id", flat=True)
        )

    resolved = inputs.resolve(campaign, universe, detectors)
    if not need_exposures:
        return None, resolved
    kept = exposures()
    if resolved is not None:
        key = "exposure_id" if resolved.key == "exposure" else "visit_id"
        queried_keys = {(e["instrument"], e[key]) for e in kept}
        kept = [e for e in kept if (e["instrument"], e[key]) in resolved.keys]
        # The table too keeps only what the data query selects (cheap here: the registry was asked anyway).
        resolved.rows = [r for r in resolved.rows if r[:2] in queried_keys]
        resolved.keys &= queried_keys
    return kept, resolved


def _set_key(campaign: Campaign) -> str:
    from tagging.models import DataIdSetVersion

    from ..inputs import set_refs

    include, exclude = set_refs(campaign)
    ref = (include + exclude)[0]
    dims = (
        DataIdSetVersion.objects.filter(
            dataid_set__repo__label=campaign.butler_repo_id, dataid_set__name=ref["dataid_set"], number=ref["version"]
        )
        .values_list("dimensions", flat=True)
        .first()
    ) or ["exposure"]
    return "exposure" if "exposure" in dims else "visit"


def _query_exposures(campaign: Campaign) -> list[dict[str, Any]]:
    from lsst_adapter.dataids import query_data_ids
    from tagging.models import Exposure

    repo = campaign.butler_repo
    where = base_where(campaign)
    ids = sorted(
        {
            int(d["exposure"])
            for d in query_data_ids(
                repo.config_uri, ["exposure"], where, default_instrument=repo.default_instrument or None
            )
        }
    )
    mirror: dict[int, dict[str, Any]] = {
        e["exposure_id"]: dict(e)
        for e in Exposure.objects.filter(repo=repo, exposure_id__in=ids).values(
            "exposure_id", "day_obs", "visit_id", "instrument"
        )
    }
    missing = [i for i in ids if i not in mirror]
    if missing:
        raise ValidationError(
            {
                "butler_repo": f"{len(missing)} selected exposures are not in the exposure mirror of repo "
                f"{repo.label} (first: {missing[0]}); sync the mirror first."
            }
        )
    return [mirror[i] for i in ids]


def plan_groups(campaign: Campaign, step: Step, exposures: list[dict[str, Any]] | None) -> list[PlannedGroup]:
    """The groups of ``step``: pre-defined ones (``step_groups_define``) or the split rule's."""
    base = base_where(campaign)
    defined = list(step.groups.all())
    if defined:
        return [PlannedGroup(g.name, and_where(base, g.data_query)) for g in defined]
    split = clean_split(step.split)
    by = split["by"]
    if by == SplitBy.LIST:
        return [PlannedGroup(g["name"], and_where(base, g["where"])) for g in split["groups"]]
    assert exposures is not None
    if by == SplitBy.NIGHT:
        nights = sorted({e["day_obs"] for e in exposures})
        return [PlannedGroup(f"night-{n}", and_where(base, f"day_obs = {n}")) for n in nights]
    if by == SplitBy.EXPOSURE:
        ids = [e["exposure_id"] for e in exposures]
        chunks = _chunks(ids, split["max_size"])
        return [
            PlannedGroup(f"exposures-{i + 1:03d}", and_where(base, _in("exposure", c))) for i, c in enumerate(chunks)
        ]
    visits = sorted({e["visit_id"] for e in exposures if e["visit_id"] is not None})
    chunks = _chunks(visits, split["max_size"])
    return [PlannedGroup(f"visits-{i + 1:03d}", and_where(base, _in("visit", c))) for i, c in enumerate(chunks)]


def needs_exposures(step: Step) -> bool:
    return not step.groups.exists() and clean_split(step.split)["by"] != SplitBy.LIST


# --------------------------------------------------------------------------------------
# Names and paths
# --------------------------------------------------------------------------------------


def campaign_collection(campaign: Campaign) -> str:
    return campaign.output_collection or f"u/{campaign.owner.username}/{campaign.name}"


def step_collection(campaign: Campaign, step: Step) -> str:
    return f"{campaign_collection(campaign)}/{step.name}"


def group_collection(campaign: Campaign, step: Step, group_name: str) -> str:
    return f"{step_collection(campaign, step)}/{group_name}"


def run_collection(group_output: str, number: int) -> str:
    return f"{group_output}/attempt{number}"


def require_launchable(steps: list, pipeline: str) -> None:
    """Refuse to plan or launch a campaign with no steps or whose pipeline file does not exist."""
    from django.core.exceptions import ValidationError

    if not steps:
        raise ValidationError({"steps": "A campaign needs at least one step to be launched."})
    pipeline_path, _ = resolve_pipeline(pipeline)
    if not pipeline_path.is_file():
        raise ValidationError({"pipeline": f"The pipeline file {pipeline_path} does not exist."})


def resolve_pipeline(uri: str) -> tuple[Path, str]:
    """The pipeline file of ``uri`` (``path[#labels]``) and its fragment.

    Relative paths are looked up under ``CM_PIPELINE_ROOT`` (default: the project); a leading
    ``demo/`` names the project's own demo pipeline directory.
    """
    path_text, _, fragment = uri.partition("#")
    path = Path(path_text)
    if not path.is_absolute():
        root = Path(settings.CM_PIPELINE_ROOT)
        candidates = [root / path]
        if path.parts and path.parts[0] == "demo":
            candidates.append(Path(settings.BASE_DIR).joinpath(*path.parts[1:]))
        path = next((c for c in candidates if c.is_file()), candidates[0])
    return path, fragment


def step_pipeline(campaign: Campaign, step: Step) -> str:
    path, fragment = resolve_pipeline(campaign.pipeline)
    labels = step.pipeline_subset or fragment
    return f"{path}#{labels}" if labels else str(path)
