"""Every permission-aware read of the campaign database."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Prefetch, Q, QuerySet
from django.http import Http404

from core.filters import without_blanks

from .choices import GroupStatus
from .models import CHANGE, VIEW, Attachment, Campaign, Group, HistoryEntry, Notification, Step
from .selectors_attention import attention_annotations


def campaign_list(*, user, filters: dict[str, Any] | None = None) -> QuerySet[Campaign]:
    """Campaigns ``user`` may view, filtered by the shared FilterSet, with what a list row shows."""
    from .filtersets import CampaignFilterSet

    qs = (
        Campaign.objects.restrict(user, VIEW)
        .select_related("owner", "butler_repo")
        .annotate(
            group_count=Count("steps__groups", distinct=True),
            groups_done=Count(
                "steps__groups",
                filter=Q(steps__groups__status__in=[GroupStatus.SUCCEEDED, GroupStatus.ACCEPTED]),
                distinct=True,
            ),
            **attention_annotations(),  # what needs a person: the list's column (selectors_attention)
        )
        # Explicit: Django drops Meta.ordering from GROUP BY (annotated) queries, which left pages unordered.
        .order_by("-updated", "name", "pk")
    )
    filterset = CampaignFilterSet(without_blanks(filters), queryset=qs)
    if not filterset.is_valid():
        from django.core.exceptions import ValidationError

        # Messages only: {"status": ["Select a valid choice. ..."]} (the codes were leaking in as extra messages).
        raise ValidationError(
            {field: [e["message"] for e in errors] for field, errors in filterset.errors.get_json_data().items()}
        )
    return filterset.qs


def access_campaign(user, pk: int | str, action: str = VIEW, *, for_update: bool = False) -> Campaign:
    """The campaign, if ``user`` may ``action`` it: 404 if they may not even see it, 403 if only not change it."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such campaign.") from None
    visible = Campaign.objects.restrict(user, VIEW).filter(pk=pk)
    if action == VIEW:
        campaign = visible.select_related("owner", "definer", "butler_repo").first()
        if campaign is None:
            raise Http404("No such campaign.")
        return campaign
    editable = Campaign.objects.restrict(user, CHANGE).filter(pk=pk)
    if for_update:
        editable = editable.select_for_update(of=("self",))
    campaign = editable.select_related("owner", "definer", "butler_repo").first()
    if campaign is None:
        if not visible.exists():
            raise Http404("No such campaign.")
        raise PermissionDenied("You may view this campaign but not change it.")
    return campaign


def campaign_by_name(*, user, name: str) -> Campaign:
    campaign = Campaign.objects.restrict(user, VIEW).filter(name=name).only("pk").first()
    if campaign is None:
        raise Http404(f"No campaign named {name!r}.")
    return access_campaign(user, campaign.pk, VIEW)


def campaign_can_change(user, campaign: Campaign) -> bool:
    return Campaign.objects.restrict(user, CHANGE).filter(pk=campaign.pk).exists()


def campaign_steps(*, campaign: Campaign) -> list[Step]:
    """Steps in order with their dependencies and groups, and per-step group counts."""
    steps = list(
        Step.objects.filter(campaign=campaign)
        .prefetch_related("depends_on", Prefetch("groups", queryset=Group.objects.order_by("position", "name")))
        .order_by("position")
    )
    for step in steps:
        groups = list(step.groups.all())
        counts = {state: sum(1 for g in groups if g.status == state) for state in GroupStatus.values}
        step.group_counts = counts  # type: ignore[attr-defined]
        step.group_total = len(groups)  # type: ignore[attr-defined]
    return steps


def campaign_progress(*, campaign: Campaign) -> dict[str, Any]:
    """Counts of groups by state across the campaign, and the share that is done (succeeded or accepted)."""
    rows = Group.objects.filter(step__campaign=campaign).values("status").annotate(n=Count("pk"))
    counts = {state: 0 for state in GroupStatus.values}
    for row in rows:
        counts[row["status"]] = row["n"]
    total = sum(counts.values())
    done = counts[GroupStatus.SUCCEEDED] + counts[GroupStatus.ACCEPTED]
    failed = counts[GroupStatus.FAILED]
    return {
        "counts": counts,
        "total": total,
        "done": done,
        "failed": failed,
        "percent_done": round(100 * done / total) if total else 0,
        "percent_failed": round(100 * failed / total) if total else 0,
    }


def campaign_history(*, campaign: Campaign) -> QuerySet[HistoryEntry]:
    return campaign.history.select_related("actor").order_by("-at", "-pk")


def campaign_attachments(*, campaign: Campaign) -> QuerySet[Attachment]:
    return campaign.attachments.select_related("uploaded_by").order_by("-uploaded")


def attachment_for_download(*, user, campaign_id: int, attachment_id: int) -> Attachment:
    campaign = access_campaign(user, campaign_id, VIEW)
    attachment = campaign.attachments.filter(pk=attachment_id).first()
    if attachment is None:
        raise Http404("No such attachment.")
    return attachment


def access_group(user, group_id: int | str, action: str = VIEW) -> Group:
    """A group of a campaign the user may ``action`` (404 if they may not see it)."""
    try:
        group_id = int(group_id)
    except (TypeError, ValueError):
        raise Http404("No such group.") from None
    group = Group.objects.select_related("step__campaign").filter(pk=group_id).first()
    if group is None:
        raise Http404("No such group.")
    access_campaign(user, group.step.campaign_id, action)
    return group


def access_step(user, step_id: int | str, action: str = VIEW) -> Step:
    try:
        step_id = int(step_id)
    except (TypeError, ValueError):
        raise Http404("No such step.") from None
    step = Step.objects.select_related("campaign").filter(pk=step_id).first()
    if step is None:
        raise Http404("No such step.")
    access_campaign(user, step.campaign_id, action)
    return step


def group_submissions(*, group: Group) -> QuerySet:
    from .models import Submission

    return Submission.objects.filter(group=group).select_related("requested_by").order_by("-number")


def group_errors(*, group: Group) -> QuerySet:
    from .models import QuantumError

    return (
        QuantumError.objects.filter(submission__group=group)
        .select_related("submission", "rule")
        .order_by("-submission__number", "task_label", "pk")
    )


def group_transitions(*, group: Group) -> QuerySet:
    from .models import GroupTransition

    return GroupTransition.objects.filter(group=group).select_related("actor", "submission").order_by("-at", "-pk")


def campaign_failures(*, campaign: Campaign) -> dict[str, list[dict[str, Any]]]:
    """Failures of the campaign's latest attempts, counted by error rule and by task."""
    from .models import QuantumError

    # Only each group's latest attempt: failures that a retry or rescue since fixed are history, not a count.
    errors = QuantumError.objects.filter(
        submission__group__step__campaign=campaign, submission__number=F("submission__group__attempts")
    )
    by_rule = (
        errors.values("rule__id", "rule__message_regex", "rule__task_label", "action")
        .annotate(n=Count("pk"))
        .order_by("-n")
    )
    by_task = errors.values("task_label", "exception_type").annotate(n=Count("pk")).order_by("-n", "task_label")
    return {"by_rule": [dict(row) for row in by_rule], "by_task": [dict(row) for row in by_task]}


def error_rules() -> QuerySet:
    from .models import ErrorRule

    return (
        ErrorRule.objects.select_related("created_by").annotate(match_count=Count("matches")).order_by("position", "pk")
    )


def access_error_rule(pk: int | str):
    """One error rule (every logged-in user may read them; staff change them): 404 if there is none."""
    try:
        key = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such error rule.") from None
    rule = error_rules().filter(pk=key).first()
    if rule is None:
        raise Http404("No such error rule.")
    return rule


def campaign_notifications(*, campaign: Campaign, limit: int = 20) -> list[Notification]:
    """The campaign's most recent notifications (the caller has checked that the user may change it)."""
    return list(Notification.objects.filter(campaign=campaign).order_by("-created", "-pk")[:limit])
