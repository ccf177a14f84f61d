"""Recurring campaigns (issue "Execution"): a cron schedule that clones a template campaign with a
fresh selection ("the last N nights") and launches the copy.

Each ``RecurringCampaign`` owns one django-celery-beat ``PeriodicTask`` (with a ``CrontabSchedule``)
that the services here create, update and delete; beat's ``DatabaseScheduler`` sends
``campaigns.tasks.recurring_run`` from it. Permissions follow the template campaign: anyone who
may view it sees the schedule; staff who may change it manage the schedule.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from core.roles import is_staff_member

from .choices import HistoryAction
from .models import CHANGE, VIEW, Campaign, RecurringCampaign, slug_safe
from .selectors import access_campaign

logger = logging.getLogger(__name__)

TASK_NAME = "campaigns.tasks.recurring_run"
MAX_NIGHTS = 3660
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


# --------------------------------------------------------------------------------------
# Cron expressions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cron:
    minute: str
    hour: str
    day_of_month: str
    month_of_year: str
    day_of_week: str

    def __str__(self) -> str:
        return " ".join(getattr(self, f) for f in CRON_FIELDS)

    def schedule(self, *, nowfun=None):
        """Celery's ``crontab`` for these fields (UTC, the app's time zone)."""
        from celery.schedules import crontab

        return crontab(
            nowfun=nowfun,
            minute=self.minute,
            hour=self.hour,
            day_of_month=self.day_of_month,
            month_of_year=self.month_of_year,
            day_of_week=self.day_of_week,
        )


def parse_cron(expression: Any) -> Cron:
    """Five fields (minute hour day-of-month month day-of-week), as crontab(5); ``ValidationError`` on ``cron``."""
    if not isinstance(expression, str) or not expression.strip():
        raise ValidationError({"cron": "A cron expression is required, e.g. '0 12 * * *' (every day at 12:00 UTC)."})
    parts = expression.split()
    if len(parts) != 5:
        raise ValidationError(
            {"cron": f"Expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}."}
        )
    cron = Cron(*parts)
    try:
        cron.schedule()
    except Exception as exc:  # celery raises ValueError, and sometimes IndexError/ZeroDivisionError, on bad fields
        raise ValidationError({"cron": f"Not a valid cron expression: {exc or type(exc).__name__}."}) from exc
    return cron


def next_run(recurring: RecurringCampaign, *, now: datetime | None = None) -> datetime | None:
    """When beat will next run the schedule (``None`` when disabled or the cron is unreadable)."""
    if not recurring.enabled:
        return None
    now = now or timezone.now()
    try:
        schedule = parse_cron(recurring.cron).schedule(nowfun=lambda: now)
    except ValidationError:
        return None
    remaining = schedule.remaining_estimate(now)
    return (now + remaining).replace(second=0, microsecond=0)


# --------------------------------------------------------------------------------------
# The fresh selection
# --------------------------------------------------------------------------------------


def _day_obs_today(now: datetime) -> int:
    # Rubin's day_obs: the date at UTC-12h, so one night never spans two day_obs values.
    return int((now.astimezone(UTC) - timedelta(hours=12)).strftime("%Y%m%d"))


def since_day_obs(template: Campaign, last_nights: int, *, now: datetime | None = None) -> int:
    """The first day_obs of the last ``last_nights`` nights that have exposures in the template's repo.

    From the repo's exposure mirror; with no exposures mirrored, plain date arithmetic from today.
    """
    from tagging.models import Exposure

    nights = list(
        Exposure.objects.filter(repo__label=template.butler_repo_id)
        .order_by("-day_obs")
        .values_list("day_obs", flat=True)
        .distinct()[:last_nights]
    )
    if nights:
        return min(nights)
    today = datetime.strptime(str(_day_obs_today(now or timezone.now())), "%Y%m%d")
    return int((today - timedelta(days=last_nights - 1)).strftime("%Y%m%d"))


def fresh_query(template: Campaign, since: int) -> str:
    from .execution.planning import and_where

    return and_where(template.data_query, f"exposure.day_obs >= {since}")


# --------------------------------------------------------------------------------------
# Reads
# --------------------------------------------------------------------------------------


def recurring_list(*, user) -> QuerySet[RecurringCampaign]:
    """Schedules whose template ``user`` may view."""
    return (
        RecurringCampaign.objects.filter(template__in=Campaign.objects.restrict(user, VIEW).values("pk"))
        .select_related("template", "owner", "last_campaign", "periodic_task")
        .order_by("name_prefix", "pk")
    )


def recurring_rows(*, user) -> list[dict[str, Any]]:
    """What the schedules page lists: each schedule, its next run and whether ``user`` may manage it."""
    schedules = list(recurring_list(user=user))
    editable = set(
        Campaign.objects.restrict(user, CHANGE)
        .filter(pk__in={s.template_id for s in schedules})
        .values_list("pk", flat=True)
    )
    now = timezone.now()
    return [
        {
            "schedule": s,
            "next_run": next_run(s, now=now),
            "can_edit": s.template_id in editable and is_staff_member(user),
        }
        for s in schedules
    ]


def access_recurring(user, pk: int | str, action: str = VIEW) -> RecurringCampaign:
    """The schedule, if ``user`` may ``action`` its template: 404 if they cannot see it, 403 if not change it."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such schedule.") from None
    recurring = (
        RecurringCampaign.objects.select_related("template", "owner", "last_campaign", "periodic_task")
        .filter(pk=pk)
        .first()
    )
    if recurring is None:
        raise Http404("No such schedule.")
    try:
        access_campaign(user, recurring.template_id, action)
    except Http404:
        raise Http404("No such schedule.") from None
    if action == CHANGE:
        _require_staff(user)
    return recurring


# --------------------------------------------------------------------------------------
# Writes
# --------------------------------------------------------------------------------------


def _require_staff(user) -> None:
    if not is_staff_member(user):
        raise PermissionDenied("Only staff members can schedule campaigns.")


def _record(template: Campaign, *, actor, changes: dict[str, Any], comment: str = "") -> None:
    from .services import _record as record

    record(campaign=template, actor=actor, action=HistoryAction.SCHEDULE, changes=changes, comment=comment)


def _clean(*, name_prefix: Any, cron: Any, last_nights: Any, instance: RecurringCampaign | None) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    prefix = (name_prefix or "").strip() if isinstance(name_prefix, str) else ""
    if not prefix:
        errors["name_prefix"] = ["A name prefix is required."]
    else:
        try:
            slug_safe(prefix)
        except ValidationError as exc:
            errors["name_prefix"] = exc.messages
        if len(prefix) > 80:
            errors.setdefault("name_prefix", []).append("At most 80 characters.")
        clash = RecurringCampaign.objects.filter(name_prefix__iexact=prefix)
        if instance is not None:
            clash = clash.exclude(pk=instance.pk)
        if clash.exists():
            errors.setdefault("name_prefix", []).append(f"Another schedule already uses the prefix {prefix!r}.")
    try:
        parsed = str(parse_cron(cron))
    except ValidationError as exc:
        errors.update(exc.message_dict)
        parsed = ""
    nights: int | None = None
    if isinstance(last_nights, bool) or not isinstance(last_nights, int | str):
        errors["last_nights"] = ["Must be a whole number of nights."]
    else:
        try:
            nights = int(last_nights)
        except ValueError:
            errors["last_nights"] = [f"Must be a whole number of nights, got {last_nights!r}."]
        else:
            if not 1 <= nights <= MAX_NIGHTS:
                errors["last_nights"] = [f"Must be between 1 and {MAX_NIGHTS}."]
    if errors:
        raise ValidationError(errors)
    return {"name_prefix": prefix, "cron": parsed, "last_nights": nights}


def _sync_periodic_task(recurring: RecurringCampaign) -> None:
    """Create or update the beat entry of ``recurring`` (saving it tells beat that the schedule changed)."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    cron = parse_cron(recurring.cron)
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=cron.minute,
        hour=cron.hour,
        day_of_month=cron.day_of_month,
        month_of_year=cron.month_of_year,
        day_of_week=cron.day_of_week,
        timezone=ZoneInfo("UTC"),
    )
    task = recurring.periodic_task or PeriodicTask(name=f"recurring-campaign-{recurring.pk}", task=TASK_NAME)
    task.task = TASK_NAME
    task.crontab = schedule
    task.interval = None
    task.args = json.dumps([recurring.pk])
    task.enabled = recurring.enabled
    task.description = f"Clone {recurring.template.name} as {recurring.name_prefix}-<YYYYMMDD-HHMM> and launch it."
    task.save()
    if recurring.periodic_task_id != task.pk:
        recurring.periodic_task = task
        recurring.save(update_fields=["periodic_task", "updated"])


def _summary(recurring: RecurringCampaign) -> str:
    state = "enabled" if recurring.enabled else "disabled"
    return f"{recurring.name_prefix}: '{recurring.cron}' UTC, last {recurring.last_nights} nights, {state}"


@transaction.atomic
def recurring_create(
    *, user, template_id: int, name_prefix: str, cron: str, last_nights: int = 14, enabled: bool = True
) -> RecurringCampaign:
    """Schedule a template campaign (staff who may change it); its beat entry is created with it."""
    template = access_campaign(user, template_id, CHANGE, for_update=True)
    _require_staff(user)
    clean = _clean(name_prefix=name_prefix, cron=cron, last_nights=last_nights, instance=None)
    recurring = RecurringCampaign.objects.create(template=template, owner=user, enabled=bool(enabled), **clean)
    _sync_periodic_task(recurring)
    _record(template, actor=user, changes={"schedule": [None, _summary(recurring)]})
    return recurring


@transaction.atomic
def recurring_update(
    *,
    user,
    recurring_id: int,
    name_prefix: str | None = None,
    cron: str | None = None,
    last_nights: int | None = None,
    enabled: bool | None = None,
) -> RecurringCampaign:
    """Change a schedule (what is not given stays); the beat entry follows, a disabled one stops."""
    recurring = access_recurring(user, recurring_id, CHANGE)
    recurring = (
        RecurringCampaign.objects.select_for_update(of=("self",))
        .select_related("template", "periodic_task")
        .get(pk=recurring.pk)
    )
    before = _summary(recurring)
    clean = _clean(
        name_prefix=recurring.name_prefix if name_prefix is None else name_prefix,
        cron=recurring.cron if cron is None else cron,
        last_nights=recurring.last_nights if last_nights is None else last_nights,
        instance=recurring,
    )
    for field, value in clean.items():
        setattr(recurring, field, value)
    if enabled is not None:
        recurring.enabled = bool(enabled)
    recurring.save()
    _sync_periodic_task(recurring)
    after = _summary(recurring)
    if after != before:
        _record(recurring.template, actor=user, changes={"schedule": [before, after]})
    return recurring


@transaction.atomic
def recurring_delete(*, user, recurring_id: int) -> None:
    """Remove a schedule and its beat entry. The campaigns it made stay."""
    recurring = access_recurring(user, recurring_id, CHANGE)
    task = recurring.periodic_task
    summary = _summary(recurring)
    template = recurring.template
    recurring.delete()
    if task is not None:
        task.delete()
    _record(template, actor=user, changes={"schedule": [summary, None]})


def recurring_run(*, recurring_id: int, now: datetime | None = None) -> Campaign | None:
    """What beat runs: clone the template as ``<prefix>-<YYYYMMDD-HHMM>`` with the last N nights, launch it.

    Safe to run twice: a second run in the same minute finds the campaign of the first and does
    nothing. The copy is made and launched as the schedule's owner; a launch that fails leaves the
    draft copy for people to look at, with the error recorded on the schedule.
    """
    from .execution.services import campaign_launch
    from .services import campaign_clone

    now = (now or timezone.now()).astimezone(UTC).replace(second=0, microsecond=0)
    with transaction.atomic():
        recurring = (
            RecurringCampaign.objects.select_for_update()
            .select_related("template", "owner")
            .filter(pk=recurring_id)
            .first()
        )
        if recurring is None or not recurring.enabled:
            return None
        name = f"{recurring.name_prefix}-{now:%Y%m%d-%H%M}"
        if Campaign.objects.filter(name__iexact=name).exists():
            return None
        template, owner = recurring.template, recurring.owner
        since = since_day_obs(template, recurring.last_nights, now=now)
        note = f"Recurring schedule {recurring.name_prefix} ({recurring.cron} UTC): the last {recurring.last_nights} night(s), day_obs >= {since}."
        try:
            if not Campaign.objects.restrict(owner, CHANGE).filter(pk=template.pk).exists():
                raise PermissionDenied(f"{owner.username} may no longer change the template {template.name}.")
            campaign = campaign_clone(
                user=owner,
                campaign_id=template.pk,
                name=name,
                overrides={
                    "data_query": fresh_query(template, since),
                    "scope": (f"{template.scope}\n" if template.scope else "") + note,
                },
                comment=f"Cloned from {template.name} by the recurring schedule {recurring.name_prefix}.",
            )
        except (PermissionDenied, Http404, ValidationError) as exc:
            error = f"{type(exc).__name__}: {'; '.join(getattr(exc, 'messages', [str(exc)]))}"
            RecurringCampaign.objects.filter(pk=recurring.pk).update(last_run=now, last_error=error[:4000])
            logger.warning("Recurring schedule %s could not clone %s: %s", recurring.pk, template.name, error)
            return None
        RecurringCampaign.objects.filter(pk=recurring.pk).update(last_run=now, last_campaign=campaign, last_error="")
        _record(template, actor=owner, changes={"recurring run": [None, name]}, comment=note)
    try:
        campaign_launch(user=owner, campaign_id=campaign.pk, comment=note)
    except (PermissionDenied, ValidationError) as exc:
        error = f"launch of {name} failed: {'; '.join(getattr(exc, 'messages', [str(exc)]))}"
        RecurringCampaign.objects.filter(pk=recurring.pk).update(last_error=error[:4000])
        logger.warning("Recurring schedule %s: %s", recurring.pk, error)
    campaign.refresh_from_db()
    return campaign
