"""The plan of a campaign (a read): what *Launch* would make of it, or what it made.

Before launch (draft, ready) it runs the same planning as :func:`campaign_launch` (split rules, frozen
``where`` clauses, the check that each step's groups cover its data exactly once) without writing anything.
Once launched it shows the groups as they were frozen: each group's own ``where`` and data-ID tables, with
the quanta that actually ran next to the estimate. Either way each group's quanta are estimated from the
registry (:mod:`lsst_adapter.estimate`) from that group's own ``where`` and data-ID tables (the campaign's
DataID sets, the group's chunk of a set), never from the campaign's whole query. Counting stops after
``CM_PLAN_MAX_COUNTED_GROUPS`` groups (one registry query per task and group); the rest are listed without
an estimate. Pipelines are shown as the user wrote them (``demo/pipelines/drp.yaml#step1``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from .. import inputs as campaign_inputs
from ..choices import CampaignStatus
from ..models import VIEW, Campaign, Group, QuantumError, Step
from ..selectors import access_campaign
from ..splits import describe
from . import planning

__all__ = ["CampaignPlan", "GroupPlan", "StepPlan", "campaign_plan"]

PLANNABLE = (CampaignStatus.DRAFT, CampaignStatus.READY)


@dataclass
class GroupPlan:
    name: str
    where: str
    tables: list[dict[str, Any]] = field(default_factory=list)  # {"name", "rows", "what"} of its data-ID tables
    quanta: dict[str, int] | None = None  # task label -> estimated quanta; None when not counted
    estimate_note: str = ""  # why the estimate is missing or only a bound
    status: str = ""  # launched groups: their state
    ran: dict[str, Any] | None = None  # launched groups: the quanta that ran (totals, and per task)

    @property
    def total(self) -> int | None:
        return None if self.quanta is None else sum(self.quanta.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "where": self.where,
            "data_id_tables": self.tables,
            "quanta": self.quanta,
            "quanta_total": self.total,
            "estimate_note": self.estimate_note,
            "ran": self.ran,
        }


@dataclass
class StepPlan:
    step: Step
    pipeline: str  # as the user wrote it
    tasks: dict[str, list[str]]  # label -> dimensions
    inputs_joined: list[str]
    groups: list[GroupPlan] = field(default_factory=list)
    upper_bound: bool = False  # its inputs come from an earlier step: counted from the registry alone
    split: str = ""  # the rule in words
    split_check: dict[str, str] | None = None  # {"state", "note"} before launch

    @property
    def total(self) -> int:
        return sum(g.total or 0 for g in self.groups)

    @property
    def ran_total(self) -> int | None:
        ran = [g.ran for g in self.groups if g.ran is not None]
        return sum(r["succeeded"] + r["failed"] for r in ran) if ran else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.step.name,
            "pipeline": self.pipeline,
            "where": self.step.where,
            "split": dict(self.step.split or planning.DEFAULT_SPLIT),
            "split_text": self.split,
            "split_check": self.split_check,
            "depends_on": [s.name for s in self.step.depends_on.all()],
            "requires_approval": self.step.requires_approval,
            "tasks": self.tasks,
            "inputs_joined": self.inputs_joined,
            "upper_bound": self.upper_bound,
            "quanta_total": self.total,
            "groups": [g.to_dict() for g in self.groups],
        }


@dataclass
class CampaignPlan:
    campaign: Campaign
    steps: list[StepPlan]
    counted_groups: int
    uncounted_groups: int
    seconds: float
    dataid_sets: str = ""  # "include a@v1; exclude b@v2": every group's data-ID table at launch
    dataid_set_rows: int | None = None  # data IDs left after the sets
    launched: bool = False  # the groups shown are the frozen ones, with what ran
    pipeline_problem: str = ""  # launched: why nothing could be estimated (the pipeline cannot be read)

    @property
    def total(self) -> int:
        return sum(s.total for s in self.steps)

    @property
    def group_count(self) -> int:
        return sum(len(s.groups) for s in self.steps)

    @property
    def launchable(self) -> bool:
        return self.campaign.status in PLANNABLE and not self.campaign.archived

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign.name,
            "status": self.campaign.status,
            "launchable": self.launchable,
            "launched": self.launched,
            "pipeline": self.campaign.pipeline,
            "pipeline_problem": self.pipeline_problem,
            "groups": self.group_count,
            "quanta_total": self.total,
            "counted_groups": self.counted_groups,
            "uncounted_groups": self.uncounted_groups,
            "seconds": round(self.seconds, 3),
            "dataid_sets": self.dataid_sets,
            "dataid_set_rows": self.dataid_set_rows,
            "steps": [s.to_dict() for s in self.steps],
        }


def campaign_plan(*, user, campaign_id: int, max_counted: int | None = None) -> CampaignPlan:
    """The groups of each step with estimated quanta. Writes nothing.

    Before launch, raises ``ValidationError`` (naming the field) for what would also stop the launch: no
    steps, a missing pipeline file, an unreadable repo or pipeline, a step without data, a split that
    drops or duplicates data. Once launched, shows the frozen groups and what ran."""
    campaign = access_campaign(user, campaign_id, VIEW)
    limit = settings.CM_PLAN_MAX_COUNTED_GROUPS if max_counted is None else max_counted
    steps = list(campaign.steps.order_by("position").prefetch_related("depends_on"))
    if campaign.status not in PLANNABLE:
        return _launched_plan(campaign, steps, limit)
    return _draft_plan(campaign, steps, limit)


def _table_of(table: Any) -> dict[str, Any]:
    return {"name": table.label, "rows": len(table.rows)}


def _draft_plan(campaign: Campaign, steps: list[Step], limit: int) -> CampaignPlan:
    from lsst_adapter.estimate import count_quanta
    from lsst_adapter.registry import RepoError

    from .services import plan_step

    started = time.monotonic()
    planning.require_launchable(steps, campaign.pipeline)
    repo = campaign.butler_repo
    input_collections = list(campaign.input_collections or [])
    plans: list[StepPlan] = []
    counted = uncounted = 0
    shapes: dict[str, Any] = {}
    try:
        planner = planning.Planner.for_steps(campaign, steps)
        resolved = planner.resolved
        for step in steps:
            groups, check = plan_step(planner, step, shapes=shapes)
            shape = shapes[planning.step_pipeline(campaign, step)]
            plan = StepPlan(
                step=step,
                pipeline=planning.step_pipeline_as_written(campaign, step),
                tasks=shape.tasks,
                inputs_joined=shape.overall_inputs,
                upper_bound=step.depends_on.exists(),
                split=describe(step.split),
                split_check=check.to_dict(),
            )
            for planned in groups:
                tables = [*planner.tables, *([planned.table] if planned.table is not None else [])]
                group = GroupPlan(name=planned.name, where=planned.where, tables=[_table_of(t) for t in tables])
                if counted < limit:
                    group.quanta = count_quanta(
                        repo.config_uri,
                        shape,
                        planned.where,
                        input_collections=input_collections,
                        default_instrument=repo.default_instrument or None,
                        tables=tables,
                    )
                    counted += 1
                else:
                    uncounted += 1
                plan.groups.append(group)
            plans.append(plan)
    except RepoError as exc:
        raise ValidationError({"butler_repo": str(exc)}) from exc
    return CampaignPlan(
        campaign=campaign,
        steps=plans,
        counted_groups=counted,
        uncounted_groups=uncounted,
        seconds=time.monotonic() - started,
        dataid_sets=resolved.text if resolved is not None else "",
        dataid_set_rows=len(resolved.rows) if resolved is not None else None,
    )


def _ran(group: Group, per_task: dict[str, int] | None, failed_by_task: dict[str, int]) -> dict[str, Any]:
    return {
        "attempts": group.attempts,
        "quanta_total": group.quanta_total,
        "succeeded": group.quanta_succeeded,
        "failed": group.quanta_failed,
        "per_task": per_task,  # succeeded quanta per task, from the Butler (None: not asked)
        "failed_per_task": failed_by_task,
    }


def _launched_plan(campaign: Campaign, steps: list[Step], limit: int) -> CampaignPlan:
    """The frozen groups of a launched campaign, their own estimate and what ran. Never refuses: a
    pipeline that can no longer be read only leaves the estimates out, saying why."""
    from lsst_adapter.estimate import count_quanta, pipeline_shape, read_data_id_table, task_outputs
    from lsst_adapter.registry import RepoError

    started = time.monotonic()
    repo = campaign.butler_repo
    input_collections = list(campaign.input_collections or [])
    max_rows = settings.CM_PLAN_MAX_TABLE_ROWS
    problem = ""
    plans: list[StepPlan] = []
    counted = uncounted = 0
    tables_read: dict[str, Any] = {}
    shapes: dict[str, Any] = {}
    for step in steps:
        uri = planning.step_pipeline(campaign, step)
        shape = None
        if not problem:
            pipeline_file, _ = planning.resolve_pipeline(campaign.pipeline)
            if not pipeline_file.is_file():
                problem = f"The pipeline file {campaign.pipeline.partition('#')[0]} is no longer there"
            else:
                try:
                    shape = shapes[uri] if uri in shapes else pipeline_shape(uri, repo.config_uri, input_collections)
                    shapes[uri] = shape
                except RepoError as exc:
                    problem = planning.pipeline_message(str(exc), campaign)
        plan = StepPlan(
            step=step,
            pipeline=planning.step_pipeline_as_written(campaign, step),
            tasks=shape.tasks if shape else {},
            inputs_joined=shape.overall_inputs if shape else [],
            upper_bound=step.depends_on.exists(),
            split=describe(step.split),
        )
        groups = list(step.groups.order_by("position", "name"))
        failures: dict[int, dict[str, int]] = {}
        for error in QuantumError.objects.filter(submission__group__step=step).values(
            "submission__group_id", "submission__number", "submission__group__attempts", "task_label"
        ):
            if error["submission__number"] == error["submission__group__attempts"]:  # the latest attempt's
                by_task = failures.setdefault(error["submission__group_id"], {})
                by_task[error["task_label"]] = by_task.get(error["task_label"], 0) + 1
        for group in groups:
            tables: list[dict[str, Any]] = []
            joined: list[Any] = []
            note = ""
            unreadable = False
            for path in campaign_inputs.table_paths(group.data_id_table):
                try:
                    if path not in tables_read:
                        tables_read[path] = read_data_id_table(path, max_rows=max_rows)
                    table = tables_read[path]
                except RepoError:
                    # The file name only: where the server keeps it is not the client's to see.
                    tables.append({"name": path.rsplit("/", 1)[-1], "rows": None, "problem": "missing or unreadable"})
                    note = "a data-ID table cannot be read: not estimated"
                    unreadable = True
                    continue
                if table is None:
                    tables.append({"name": path.rsplit("/", 1)[-1], "rows": None})
                    note = f"a data-ID table has more than {max_rows:,} rows: counted without it (an upper bound)"
                else:
                    tables.append(_table_of(table))
                    joined.append(table)
            item = GroupPlan(name=group.name, where=group.where, tables=tables, status=group.status)
            per_task = None
            if not group.where:
                note = "no frozen selection: this group was defined by hand, not planned by a launch"
            if shape is not None and counted < limit and group.where and not unreadable:
                try:
                    item.quanta = count_quanta(
                        repo.config_uri,
                        shape,
                        group.where,
                        input_collections=input_collections,
                        default_instrument=repo.default_instrument or None,
                        tables=joined,
                    )
                    if group.attempts:
                        per_task = task_outputs(repo.config_uri, group.output_collection, list(shape.tasks))
                except RepoError as exc:
                    note = f"not estimated: {exc}"
                counted += 1
            elif shape is not None and group.where:
                uncounted += 1
            item.estimate_note = note or ("" if shape is not None else f"not estimated: {problem}")
            item.ran = _ran(group, per_task, failures.get(group.pk, {}))
            plan.groups.append(item)
        plans.append(plan)
    sets = campaign_inputs.describe(campaign)
    return CampaignPlan(
        campaign=campaign,
        steps=plans,
        counted_groups=counted,
        uncounted_groups=uncounted,
        seconds=time.monotonic() - started,
        dataid_sets=sets,
        launched=True,
        pipeline_problem=problem,
    )
