"""What needs a person: the one read behind the inbox page, ``GET /api/v1/inbox/``, ``cm inbox``, the campaign
page's banner and the campaign list's column, so that they always agree.

Needs action: a step awaiting approval (because it requires it, or because a quality gate of a step it depends on
failed), a failed group (a person retries, rescues, accepts or cancels it; "to review" when an error rule asked
for a person), a campaign the executor paused (an error rule with the action ``pause``). Only campaigns that are
running, paused or failed, and not archived, count.

Who sees what: everything of the campaigns the user may view, each item saying whether the user may act on it
(owner, collaborators, people and groups given the right, superusers). The inbox lists items for staff only:
science users and people without a role may act on nothing, so their inbox is empty.

Cost: three queries whatever the number of campaigns, steps and groups (counts are correlated subqueries of the
campaigns' query, :func:`attention_annotations`, which the campaign list adds to its own query; details are read
for at most ``limit`` items).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.urls import reverse

from core.roles import is_staff_member

from .choices import Attention, CampaignStatus, GroupStatus, HistoryAction, StepHold, StepStatus
from .models import CHANGE, VIEW, Campaign, Group, HistoryEntry, Step

ACTIVE_STATUSES = (CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.FAILED)
ITEM_LIMIT = 200  # items read in detail; counts are always complete

# Blocking a whole campaign or step first, then single groups.
_PRIORITY = {
    Attention.PAUSED: 0,
    Attention.QUALITY_GATE: 1,
    Attention.APPROVAL: 2,
    Attention.REVIEW: 3,
    Attention.FAILED_GROUP: 4,
}
# What the header of the campaign page says instead of the campaign's status (the first that applies).
HEADLINES = {
    Attention.PAUSED: "paused by the executor",
    Attention.QUALITY_GATE: "quality gate failed",
    Attention.APPROVAL: "awaiting approval",
    Attention.REVIEW: "failed groups to review",
    Attention.FAILED_GROUP: "failed groups",
}
# What a person can do about each kind (the API and CLI name them; the pages have the buttons).
ACTIONS = {
    Attention.PAUSED: ["resume"],
    Attention.QUALITY_GATE: ["approve"],
    Attention.APPROVAL: ["approve"],
    Attention.REVIEW: ["retry", "rescue", "accept", "cancel"],
    Attention.FAILED_GROUP: ["retry", "rescue", "accept", "cancel"],
}


@dataclass
class ActionItem:
    """One thing that waits for a person."""

    kind: str
    campaign_id: int
    campaign: str
    owner: str
    can_act: bool
    title: str
    reason: str
    since: datetime | None
    url: str
    step: str = ""
    step_id: int | None = None
    group: str = ""
    group_id: int | None = None
    attempts: int = 0

    @property
    def kind_label(self) -> str:
        return str(Attention(self.kind).label)

    @property
    def actions(self) -> list[str]:
        return list(ACTIONS[Attention(self.kind)])


@dataclass
class CampaignAttention:
    """What waits in one campaign: counts by kind, and the words its header shows."""

    campaign_id: int
    campaign: str
    status: str
    can_act: bool
    counts: dict[str, int] = field(default_factory=dict)
    pause_reason: str = ""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def kinds(self) -> list[str]:
        return sorted((k for k, n in self.counts.items() if n), key=lambda k: _PRIORITY[Attention(k)])

    @property
    def headline(self) -> str:
        kinds = self.kinds
        return HEADLINES[Attention(kinds[0])] if kinds else ""

    @property
    def badges(self) -> list[tuple[str, str]]:
        """(kind, words) for each kind present, e.g. ("failed_group", "2 failed groups")."""
        words = {
            Attention.PAUSED: lambda n: "paused by the executor",
            Attention.QUALITY_GATE: lambda n: f"{n} step{'s' if n != 1 else ''} held by a quality gate",
            Attention.APPROVAL: lambda n: f"{n} step{'s' if n != 1 else ''} awaiting approval",
            Attention.REVIEW: lambda n: f"{n} failed group{'s' if n != 1 else ''} to review",
            Attention.FAILED_GROUP: lambda n: f"{n} failed group{'s' if n != 1 else ''}",
        }
        return [(kind, words[Attention(kind)](self.counts[kind])) for kind in self.kinds]


@dataclass
class NeedsAction:
    """Everything that waits for a person in the campaigns a user may see (see the module's docstring)."""

    items: list[ActionItem] = field(default_factory=list)
    campaigns: dict[int, CampaignAttention] = field(default_factory=dict)
    limit: int = ITEM_LIMIT

    @property
    def total(self) -> int:
        return sum(c.total for c in self.campaigns.values())

    @property
    def more(self) -> int:
        """Items counted but not listed (beyond ``limit``)."""
        return max(0, self.total - len(self.items))

    def mine(self) -> list[ActionItem]:
        return [item for item in self.items if item.can_act]

    def others(self) -> list[ActionItem]:
        return [item for item in self.items if not item.can_act]

    def for_campaign(self, campaign_id: int) -> CampaignAttention | None:
        return self.campaigns.get(campaign_id)


def _count_of(model: Any, *, link: str, **where: Any) -> Coalesce:
    """SQL: how many rows of ``model`` linked to the outer campaign match ``where`` (a correlated subquery)."""
    rows = model.objects.filter(**{link: OuterRef("pk")}, **where).order_by().values(link).annotate(n=Count("pk"))
    return Coalesce(Subquery(rows.values("n")[:1]), Value(0))


def attention_annotations() -> dict[str, Any]:
    """The counts of what waits in a campaign, as annotations of a ``Campaign`` queryset (no extra query).

    The one definition of "needs action": the campaign list's column reads them from its own query, the inbox,
    the banner and the API through :func:`needs_action`. Zero for campaigns not running, paused or failed, and
    for archived ones. ``att_paused_by_person``: of a paused campaign, whether its last status change had an
    actor (False: the executor paused it; None: no status change recorded).
    """
    active = Q(status__in=ACTIVE_STATUSES, archived=False)

    def when_active(expression: Any, default: Any = 0) -> Case:
        return Case(When(active, then=expression), default=Value(default))

    awaiting = {"status": StepStatus.AWAITING_APPROVAL}
    failed = {"status": GroupStatus.FAILED}
    last_status = HistoryEntry.objects.filter(campaign=OuterRef("pk"), action=HistoryAction.STATUS).order_by(
        "-at", "-pk"
    )
    paused = Q(status=CampaignStatus.PAUSED, archived=False)
    return {
        "att_approval": when_active(
            _count_of(Step, link="campaign", **awaiting, hold_kind__in=["", StepHold.APPROVAL])
        ),
        "att_quality_gate": when_active(_count_of(Step, link="campaign", **awaiting, hold_kind=StepHold.QUALITY_GATE)),
        "att_failed_group": when_active(_count_of(Group, link="step__campaign", **failed, needs_review=False)),
        "att_review": when_active(_count_of(Group, link="step__campaign", **failed, needs_review=True)),
        "att_paused_by_person": Case(
            When(
                paused,
                then=Subquery(
                    last_status.annotate(
                        by_person=ExpressionWrapper(Q(actor__isnull=False), output_field=BooleanField())
                    ).values("by_person")[:1]
                ),
            ),
            default=Value(None),
            output_field=BooleanField(),
        ),
        "att_pause_reason": Case(
            When(paused, then=Subquery(last_status.values("comment")[:1])), default=Value(""), output_field=TextField()
        ),
        "att_pause_since": Case(
            When(paused, then=Subquery(last_status.values("at")[:1])), default=Value(None), output_field=DateTimeField()
        ),
    }


def campaign_attention(campaign: Any, *, can_act: bool = False) -> CampaignAttention:
    """What waits in one campaign, from a row or object annotated with :func:`attention_annotations`."""
    get: Any = campaign.get if isinstance(campaign, dict) else lambda key, default=None: getattr(campaign, key, default)
    counts = {
        Attention.APPROVAL.value: get("att_approval") or 0,
        Attention.QUALITY_GATE.value: get("att_quality_gate") or 0,
        Attention.FAILED_GROUP.value: get("att_failed_group") or 0,
        Attention.REVIEW.value: get("att_review") or 0,
        Attention.PAUSED.value: int(get("status") == CampaignStatus.PAUSED and get("att_paused_by_person") is False),
    }
    return CampaignAttention(
        campaign_id=get("pk"),
        campaign=get("name"),
        status=get("status"),
        can_act=can_act,
        counts={kind: n for kind, n in counts.items() if n},
        pause_reason=(get("att_pause_reason") or "") if counts[Attention.PAUSED.value] else "",
    )


def needs_action(*, user, campaign_ids: Collection[int] | None = None, limit: int = ITEM_LIMIT) -> NeedsAction:
    """What waits for a person in the campaigns ``user`` may view (all of them, or those of ``campaign_ids``).

    Three queries, however many campaigns, steps and groups: the campaigns with their counts (see
    :func:`attention_annotations`) and whether the user may act, their steps awaiting approval, and their most
    recent ``limit`` failed groups.
    """
    result = NeedsAction(limit=limit)
    if user is None or not user.is_authenticated or (campaign_ids is not None and not campaign_ids):
        return result
    visible = Campaign.objects.restrict(user, VIEW).filter(status__in=ACTIVE_STATUSES, archived=False)
    if campaign_ids is not None:
        visible = visible.filter(pk__in=list(campaign_ids))
    changeable = Campaign.objects.restrict(user, CHANGE).filter(pk=OuterRef("pk"))
    fields = ["pk", "name", "status", "owner__username", "can_act", *attention_annotations()]
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in visible.annotate(can_act=Exists(changeable), **attention_annotations()).order_by().values(*fields)
    ]
    campaigns = {row["pk"]: row for row in rows}
    for row in rows:
        attention = campaign_attention(row, can_act=row["can_act"])
        if attention.total:
            result.campaigns[row["pk"]] = attention
    waiting = [pk for pk, c in result.campaigns.items() if c.total]

    def item(campaign_id: int, **values: Any) -> ActionItem:
        row = campaigns[campaign_id]
        return ActionItem(
            campaign_id=campaign_id,
            campaign=row["name"],
            owner=row["owner__username"],
            can_act=row["can_act"],
            **values,
        )

    items: list[ActionItem] = []
    steps = (
        Step.objects.filter(campaign__in=waiting, status=StepStatus.AWAITING_APPROVAL)
        .order_by("campaign_id", "position")
        .values("pk", "name", "campaign_id", "hold_kind", "hold_reason", "hold_since")
    )
    for step in steps:
        kind = Attention.QUALITY_GATE if step["hold_kind"] == StepHold.QUALITY_GATE else Attention.APPROVAL
        title = (
            f"A quality gate failed: step {step['name']} awaits approval"
            if kind == Attention.QUALITY_GATE
            else f"Step {step['name']} awaits approval"
        )
        items.append(
            item(
                step["campaign_id"],
                kind=kind,
                title=title,
                reason=step["hold_reason"] or f"step {step['name']} requires approval before it starts",
                since=step["hold_since"],
                url=reverse("campaigns:detail", args=[step["campaign_id"]]) + "#steps",
                step=step["name"],
                step_id=step["pk"],
            )
        )

    details = (
        Group.objects.filter(step__campaign__in=waiting, status=GroupStatus.FAILED)
        .order_by("-updated", "-pk")
        .values(
            "pk", "name", "step_id", "step__name", "step__campaign_id", "attempts", "error", "needs_review", "updated"
        )[:limit]
    )
    for group in details:
        campaign_id = group["step__campaign_id"]
        kind = Attention.REVIEW if group["needs_review"] else Attention.FAILED_GROUP
        error = (group["error"] or "").strip()
        items.append(
            item(
                campaign_id,
                kind=kind,
                title=f"Group {group['step__name']}/{group['name']} failed"
                + (" (an error rule asks for a review)" if group["needs_review"] else ""),
                reason=error.splitlines()[0][:500] if error else "failed (no message)",
                since=group["updated"],
                url=reverse("campaigns:group", args=[campaign_id, group["pk"]]),
                step=group["step__name"],
                step_id=group["step_id"],
                group=group["name"],
                group_id=group["pk"],
                attempts=group["attempts"],
            )
        )

    # A pause is the executor's when its status change has no actor (see state.campaign_pause_by_executor).
    for campaign_id, attention in result.campaigns.items():
        if attention.counts.get(Attention.PAUSED):
            items.append(
                item(
                    campaign_id,
                    kind=Attention.PAUSED,
                    title=f"Campaign {attention.campaign} was paused by the executor",
                    reason=attention.pause_reason or "paused by the executor",
                    since=campaigns[campaign_id]["att_pause_since"],
                    url=reverse("campaigns:detail", args=[campaign_id]),
                )
            )

    items.sort(key=lambda i: (_PRIORITY[Attention(i.kind)], -(i.since.timestamp() if i.since else 0), i.campaign))
    result.items = items[:limit]
    return result


def inbox(*, user, limit: int = ITEM_LIMIT) -> NeedsAction:
    """The personal inbox: what needs a person, for staff (and superusers); nothing for anyone else."""
    if not is_staff_member(user):  # superusers count as staff
        return NeedsAction(limit=limit)
    return needs_action(user=user, limit=limit)
