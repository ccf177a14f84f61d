"""The launch plan (a read): what *Launch* would make of a campaign, with quanta estimated per group.

Runs the same planning as :func:`campaign_launch` (split rules, frozen ``where`` clauses)
without writing anything, and estimates each group's quanta from the registry
(:mod:`lsst_adapter.estimate`: data IDs of each task's dimensions selected by the group's
``where``, joined with the inputs that exist). Counting stops after
``CM_PLAN_MAX_COUNTED_GROUPS`` groups (one registry query per task and group); the rest are
listed without an estimate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from ..choices import CampaignStatus
from ..models import VIEW, Campaign, Step
from ..selectors import access_campaign
from . import planning

__all__ = ["CampaignPlan", "GroupPlan", "StepPlan", "campaign_plan"]


@dataclass
class GroupPlan:
    name: str
    where: str
    quanta: dict[str, int] | None = None  # task label -> estimated quanta; None when not counted

    @property
    def total(self) -> int | None:
        return None if self.quanta is None else sum(self.quanta.values())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "where": self.where, "quanta": self.quanta, "quanta_total": self.total}


@dataclass
class StepPlan:
    step: Step
    pipeline: str
    tasks: dict[str, list[str]]  # label -> dimensions
    inputs_joined: list[str]
    groups: list[GroupPlan] = field(default_factory=list)
    upper_bound: bool = False  # its inputs come from an earlier step: counted from the registry alone

    @property
    def total(self) -> int:
        return sum(g.total or 0 for g in self.groups)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.step.name,
            "pipeline": self.pipeline,
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

    @property
    def total(self) -> int:
        return sum(s.total for s in self.steps)

    @property
    def group_count(self) -> int:
        return sum(len(s.groups) for s in self.steps)

    @property
    def launchable(self) -> bool:
        return self.campaign.status in (CampaignStatus.DRAFT, CampaignStatus.READY) and not self.campaign.archived

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign.name,
            "status": self.campaign.status,
            "launchable": self.launchable,
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
    """The groups each step would get at launch, with estimated quanta. Writes nothing.

    Raises ``ValidationError`` (naming the field) for what would also stop the launch:
    no steps, a missing pipeline file, an unreadable repo or pipeline, a step without data.
    """
    from lsst_adapter.estimate import count_quanta, pipeline_shape
    from lsst_adapter.registry import RepoError

    started = time.monotonic()
    campaign = access_campaign(user, campaign_id, VIEW)
    limit = settings.CM_PLAN_MAX_COUNTED_GROUPS if max_counted is None else max_counted
    steps = list(campaign.steps.order_by("position").prefetch_related("depends_on"))
    planning.require_launchable(steps, campaign.pipeline)
    repo = campaign.butler_repo
    inputs = list(campaign.input_collections or [])
    plans: list[StepPlan] = []
    counted = uncounted = 0
    try:
        exposures, resolved = planning.plan_inputs(
            campaign, need_exposures=any(planning.needs_exposures(s) for s in steps)
        )
        for step in steps:
            groups = planning.plan_groups(campaign, step, exposures)
            if not groups:
                raise ValidationError({"steps": f"Step {step.name} selects no data: its split made no groups."})
            pipeline = planning.step_pipeline(campaign, step)
            shape = pipeline_shape(pipeline, repo.config_uri, inputs)
            plan = StepPlan(
                step=step,
                pipeline=pipeline,
                tasks=shape.tasks,
                inputs_joined=shape.overall_inputs,
                upper_bound=step.depends_on.exists(),
            )
            for planned in groups:
                group = GroupPlan(name=planned.name, where=planned.where)
                if counted < limit:
                    group.quanta = count_quanta(
                        repo.config_uri,
                        shape,
                        planned.where,
                        input_collections=inputs,
                        default_instrument=repo.default_instrument or None,
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
