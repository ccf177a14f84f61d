"""Planning: cutting a step into groups, freezing each group's ``where``, naming collections.

The rules are those of :mod:`campaigns.splits`. A step's selection is the campaign's data query AND the
step's own ``where``; its exposures (for the night, exposure, visit and band rules) are asked of the
registry once per distinct selection (:func:`lsst_adapter.dataids.query_data_ids`), with nights, visits and
bands from the exposure mirror (``tagging.models.Exposure``), which is plain indexed SQL. Detectors and
tracts (the registry's spatial join) are asked of the registry through :mod:`lsst_adapter.splits`; a
``dataid_set`` rule reads its set's rows and cuts them into chunks, each a group's own data-ID table.
Whether the groups cover the step's data exactly once is checked afterwards (``split_check``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from ..choices import SplitBy
from ..models import Campaign, Step
from ..splits import DEFAULT_SPLIT, split_or_raise

__all__ = ["DEFAULT_SPLIT", "PlannedGroup", "Planner", "clean_split"]


@dataclass(frozen=True)
class PlannedGroup:
    name: str
    where: str
    table: Any = None  # lsst_adapter.estimate.DataIdTable: the group's own data IDs (a chunk of a DataID set)


def clean_split(value: Any) -> dict[str, Any]:
    """Validate a split rule; returns its normal form or raises ``ValidationError`` (keys ``split...``)."""
    return split_or_raise(value)


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


def step_where(campaign: Campaign, step: Step) -> str:
    """The step's selection: the campaign's data query AND the step's own ``where``."""
    return and_where(base_where(campaign), step.where or "")


def _in(column: str, values: Sequence[int]) -> str:
    return f"{column} IN ({', '.join(str(v) for v in values)})"


def _chunks(values: list, size: int) -> list[list]:
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


def _query_exposures(campaign: Campaign, where: str | None = None) -> list[dict[str, Any]]:
    from lsst_adapter.dataids import query_data_ids
    from tagging.models import Exposure

    repo = campaign.butler_repo
    where = base_where(campaign) if where is None else where
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
            "exposure_id", "day_obs", "visit_id", "instrument", "band"
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


def sets_table(resolved) -> Any:
    """The campaign's DataID-set rows (``campaigns.inputs.ResolvedInputs``) as a table for registry queries."""
    from lsst_adapter.estimate import DataIdTable

    if resolved is None:
        return None
    return DataIdTable(dimensions=list(resolved.dimensions), rows=list(resolved.rows), label="DataID sets")


class Planner:
    """The groups of a campaign's steps. Asks the registry once per distinct step selection.

    ``exposures`` and ``resolved`` are :func:`plan_inputs`'s answers for the campaign's own data query."""

    def __init__(self, campaign: Campaign, exposures: list[dict[str, Any]] | None, resolved: Any) -> None:
        self.campaign = campaign
        self.resolved = resolved
        self._exposures: dict[str, list[dict[str, Any]]] = {}
        if exposures is not None:
            self._exposures[base_where(campaign)] = exposures

    @classmethod
    def for_steps(cls, campaign: Campaign, steps: list[Step]) -> Planner:
        exposures, resolved = plan_inputs(campaign, need_exposures=any(needs_exposures(s) for s in steps))
        return cls(campaign, exposures, resolved)

    @property
    def tables(self) -> list[Any]:
        table = sets_table(self.resolved)
        return [table] if table is not None else []

    def exposures(self, where: str) -> list[dict[str, Any]]:
        """The exposures ``where`` selects, kept by the campaign's DataID sets."""
        if where not in self._exposures:
            found = _query_exposures(self.campaign, where)
            if self.resolved is not None:
                key = "exposure_id" if self.resolved.key == "exposure" else "visit_id"
                found = [e for e in found if (e["instrument"], e[key]) in self.resolved.keys]
            self._exposures[where] = found
        return self._exposures[where]

    def groups(self, step: Step) -> list[PlannedGroup]:
        """The groups of ``step``: pre-defined ones (``step_groups_define``) or its split rule's."""
        campaign = self.campaign
        defined = list(step.groups.all())
        if defined:
            return [PlannedGroup(g.name, and_where(step_where(campaign, step), g.data_query)) for g in defined]
        return self._rule_groups(step)

    def _rule_groups(self, step: Step) -> list[PlannedGroup]:
        campaign = self.campaign
        repo = campaign.butler_repo
        base = step_where(campaign, step)
        split = clean_split(step.split)
        by = split["by"]
        if by == SplitBy.LIST:
            return [PlannedGroup(g["name"], and_where(base, g["where"])) for g in split["groups"]]
        if by == SplitBy.DATAID_SET:
            return [PlannedGroup(name, base, table) for name, table in _set_chunks(campaign, step, split)]
        if by == SplitBy.DETECTOR:
            from lsst_adapter.splits import distinct_detectors

            pairs = distinct_detectors(
                repo.config_uri, base, default_instrument=repo.default_instrument or None, tables=self.tables
            )
            ids = sorted({d for _, d in pairs})
            return [
                PlannedGroup(f"detectors-{i + 1:03d}", and_where(base, _in("detector", c)))
                for i, c in enumerate(_chunks(ids, split["max_size"]))
            ]
        if by == SplitBy.TRACT:
            return self._tract_groups(step, base, split)
        exposures = self.exposures(base)
        if by == SplitBy.NIGHT:
            nights = sorted({e["day_obs"] for e in exposures})
            return [PlannedGroup(f"night-{n}", and_where(base, f"day_obs = {n}")) for n in nights]
        if by == SplitBy.BAND:
            bands = sorted({e["band"] for e in exposures if e.get("band")})
            return [PlannedGroup(f"band-{b}", and_where(base, f"band = '{b}'")) for b in bands]
        if by == SplitBy.EXPOSURE:
            ids = [e["exposure_id"] for e in exposures]
            chunks = _chunks(ids, split["max_size"])
            return [
                PlannedGroup(f"exposures-{i + 1:03d}", and_where(base, _in("exposure", c)))
                for i, c in enumerate(chunks)
            ]
        visits = sorted({e["visit_id"] for e in exposures if e["visit_id"] is not None})
        chunks = _chunks(visits, split["max_size"])
        return [PlannedGroup(f"visits-{i + 1:03d}", and_where(base, _in("visit", c))) for i, c in enumerate(chunks)]

    def _tract_groups(self, step: Step, base: str, split: dict[str, Any]) -> list[PlannedGroup]:
        from lsst_adapter.registry import RepoError
        from lsst_adapter.splits import overlapping_tracts

        repo = self.campaign.butler_repo
        skymap = split["skymap"]
        size = split.get("max_size")
        try:
            tracts = overlapping_tracts(
                repo.config_uri,
                base,
                skymap=skymap,
                with_patches=bool(size),
                default_instrument=repo.default_instrument or None,
                tables=self.tables,
            )
        except RepoError as exc:
            raise ValidationError({f"steps[{step.position}].split.skymap": f"Step {step.name}: {exc}"}) from exc
        groups = []
        for tract, patches in tracts.items():
            where = f"skymap = '{skymap}' AND tract = {tract}"
            if not size or len(patches) <= size:
                groups.append(PlannedGroup(f"tract-{tract}", and_where(base, where)))
                continue
            for i, chunk in enumerate(_chunks(patches, size)):
                name = f"tract-{tract}-{i + 1:03d}"
                groups.append(PlannedGroup(name, and_where(base, f"{where} AND {_in('patch', chunk)}")))
        return groups


def _set_chunks(campaign: Campaign, step: Step, split: dict[str, Any]) -> list[tuple[str, Any]]:
    """(group name, its data-ID table) for each chunk of at most ``max_size`` data IDs of the split's set."""
    from lsst_adapter.estimate import DataIdTable
    from tagging.models import DataIdSetVersion
    from tagging.selectors import dataidset_rows

    version = (
        DataIdSetVersion.objects.filter(
            dataid_set__repo__label=campaign.butler_repo_id,
            dataid_set__name=split["dataid_set"],
            number=split.get("version") or 0,
        )
        .select_related("dataid_set")
        .first()
    )
    if version is None:
        raise ValidationError(
            {
                f"steps[{step.position}].split.dataid_set": f"Step {step.name}: DataID set {split['dataid_set']} "
                f"v{split.get('version')} no longer exists."
            }
        )
    dims = list(version.dimensions)
    instrument = campaign.butler_repo.default_instrument or ""
    if "instrument" not in dims and instrument and any(d in dims for d in ("exposure", "visit", "detector")):
        columns, rows = ["instrument", *dims], [(instrument, *row) for row in dataidset_rows(version=version)]
    else:
        columns, rows = dims, [tuple(row) for row in dataidset_rows(version=version)]
    rows.sort()
    label = f"{split['dataid_set']}@v{version.number}"
    return [
        (f"chunk-{i + 1:03d}", DataIdTable(dimensions=columns, rows=chunk, label=f"{label} chunk {i + 1}"))
        for i, chunk in enumerate(_chunks(rows, split["max_size"]))
    ]


def needs_exposures(step: Step) -> bool:
    by = clean_split(step.split)["by"]
    return by in (SplitBy.NIGHT, SplitBy.EXPOSURE, SplitBy.VISIT, SplitBy.BAND)


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
        # Named as the user wrote it: where the server looked is not theirs to see.
        written = pipeline.partition("#")[0]
        raise ValidationError({"pipeline": f"The pipeline file {written} does not exist."})


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


def step_pipeline_as_written(campaign: Campaign, step: Step) -> str:
    """The step's pipeline as the user wrote it (``demo/pipelines/drp.yaml#step1``), for pages and the API."""
    path_text, _, fragment = campaign.pipeline.partition("#")
    labels = step.pipeline_subset or fragment
    return f"{path_text}#{labels}" if labels else path_text


def pipeline_message(text: str, campaign: Campaign) -> str:
    """A message about the pipeline with the resolved file path put back as the user wrote it."""
    path, _ = resolve_pipeline(campaign.pipeline)
    return text.replace(str(path), campaign.pipeline.partition("#")[0])
