"""The exposure page's "Campaigns and metrics" section: every campaign the user may view that processed the
exposure (one of its groups covers it, see ``campaigns.coverage``, or wrote metric values for it), the groups
that did with their status, and the metric values where there are some.

Five queries however many campaigns, groups and values (fewer when there is nothing to show)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Avg, Count, F, Max, Min, Q

from campaigns.choices import CoverageState
from campaigns.coverage import PLANNED, current_q
from campaigns.models import Campaign, Group, GroupExposure

from .models import MetricValue


@dataclass(frozen=True)
class ExposureGroup:
    """A group that processed the exposure: ``covered`` by its selection, ``measured`` if it wrote values."""

    step: str
    name: str
    status: str
    position: tuple[int, int]
    covered: bool = False
    measured: bool = False

    def __str__(self) -> str:
        return f"{self.step}/{self.name} ({self.status})"


@dataclass
class CoverageGap:
    """Groups of a campaign for which nobody can yet say whether they cover the exposure."""

    campaign_id: int
    name: str
    pending: int  # not yet worked out (recorded by a task after launch, or by manage.py group_coverage_record)
    unknown: int  # the mirror cannot answer their selection
    reason: str


@dataclass
class ExposureCampaign:
    campaign: Campaign
    groups: list[ExposureGroup]
    metrics: list[dict[str, Any]]
    gap: CoverageGap | None = None


@dataclass
class ExposureProcessing:
    campaigns: list[ExposureCampaign] = field(default_factory=list)
    gaps: list[CoverageGap] = field(default_factory=list)  # of campaigns not in ``campaigns``

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the API: each campaign with its groups, metrics and what is not known yet."""

        def gap(g: CoverageGap | None) -> dict[str, Any] | None:
            if g is None:
                return None
            return {"campaign": g.name, "pending_groups": g.pending, "unknown_groups": g.unknown, "reason": g.reason}

        return {
            "campaigns": [
                {
                    "id": e.campaign.pk,
                    "name": e.campaign.name,
                    "status": e.campaign.status,
                    "groups": [
                        {
                            "step": g.step,
                            "name": g.name,
                            "status": g.status,
                            "covered": g.covered,
                            "measured": g.measured,
                        }
                        for g in e.groups
                    ],
                    "metrics": [{k: m[k] for k in ("metric", "unit", "n", "mean", "low", "high")} for m in e.metrics],
                    "not_known": gap(e.gap),
                }
                for e in self.campaigns
            ],
            "not_known": [gap(g) for g in self.gaps],
        }


def exposure_processing(*, user, exposure) -> ExposureProcessing:
    """Every campaign ``user`` may view (in the exposure's repo) whose groups cover the exposure or that
    measured it (or its one-to-one visit), newest first; and the campaigns some of whose groups could not be
    checked. Campaigns the user may not view are never read."""
    visible = Campaign.objects.restrict(user, "view").filter(butler_repo_id=exposure.repo.label)
    groups: dict[int, dict[tuple[str, str], ExposureGroup]] = defaultdict(dict)

    covered = GroupExposure.objects.filter(
        current_q("group__"),
        instrument=exposure.instrument,
        exposure=exposure.exposure_id,
        group__step__campaign__in=visible,
    ).values_list(
        "group__step__campaign_id",
        "group__step__name",
        "group__name",
        "group__status",
        "group__step__position",
        "group__position",
    )
    for cid, step, name, status, step_position, group_position in covered:
        groups[cid][(step, name)] = ExposureGroup(step, name, status, (step_position, group_position), covered=True)

    on_exposure = Q(exposure=exposure.exposure_id)
    if exposure.visit_id:
        on_exposure |= Q(exposure__isnull=True, visit=exposure.visit_id)
    values = MetricValue.objects.filter(on_exposure, instrument=exposure.instrument, campaign__in=visible)
    rows = list(
        values.values("campaign_id", "metric", "unit")
        .annotate(n=Count("id"), mean=Avg("value"), low=Min("value"), high=Max("value"))
        .order_by("campaign_id", "metric")
    )
    metrics: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        metrics[row["campaign_id"]].append(dict(row))
    if rows:
        measured = (
            values.filter(group__isnull=False)
            .values_list(
                "campaign_id",
                "group__step__name",
                "group__name",
                "group__status",
                "group__step__position",
                "group__position",
            )
            .distinct()
            .order_by()
        )
        for cid, step, name, status, step_position, group_position in measured:
            known = groups[cid].get((step, name))
            groups[cid][(step, name)] = ExposureGroup(
                step, name, status, (step_position, group_position), covered=bool(known), measured=True
            )

    gaps = {gap.campaign_id: gap for gap in _coverage_gaps(visible)}
    ids = set(groups) | set(metrics)
    campaigns = (
        {c.pk: c for c in Campaign.objects.filter(pk__in=ids).only("pk", "name", "status", "updated")} if ids else {}
    )
    listed = [
        ExposureCampaign(
            campaign=campaigns[cid],
            groups=sorted(groups[cid].values(), key=lambda g: (g.position, g.name)),
            metrics=metrics.get(cid, []),
            gap=gaps.get(cid),
        )
        for cid in ids
    ]
    listed.sort(key=lambda e: e.campaign.updated, reverse=True)
    return ExposureProcessing(campaigns=listed, gaps=[g for cid, g in gaps.items() if cid not in ids])


def _coverage_gaps(visible) -> list[CoverageGap]:
    """Per visible campaign, its planned groups whose coverage is not recorded for their present selection
    (pending) or that the mirror cannot answer (unknown). One aggregate query."""
    current = current_q()
    rows = (
        Group.objects.filter(PLANNED, step__campaign__in=visible)
        .values("step__campaign_id", "step__campaign__name")
        .annotate(
            total=Count("pk"),
            current=Count("pk", filter=current),
            unknown=Count("pk", filter=current & Q(coverage__state=CoverageState.UNKNOWN)),
            reason=Max("coverage__reason", filter=current & Q(coverage__state=CoverageState.UNKNOWN)),
        )
        .filter(Q(total__gt=F("current")) | Q(unknown__gt=0))
        .order_by("step__campaign__name")
    )
    return [
        CoverageGap(
            campaign_id=r["step__campaign_id"],
            name=r["step__campaign__name"],
            pending=r["total"] - r["current"],
            unknown=r["unknown"],
            reason=r["reason"] or "",
        )
        for r in rows
    ]
