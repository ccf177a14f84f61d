"""The state machine of steps and groups, and the roll-up after every group change.

Locks are always taken in the same order: campaign, then group, then submission, then step.
Every group change goes through :func:`move_group` (a conditional update, a
``GroupTransition`` row and a history entry).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from ..choices import (
    GROUP_ACTIVE_STATES,
    GROUP_DONE_STATES,
    CampaignStatus,
    GroupStatus,
    HistoryAction,
    NotificationEvent,
    StepHold,
    StepStatus,
    SubmissionState,
)
from ..models import Campaign, Group, GroupTransition, HistoryEntry, Step, Submission

logger = logging.getLogger(__name__)
# One line per group state change (the console of `make run`, the workers' logs); BPS and pipetask output goes to
# each attempt's log file instead (campaigns.execution.attempt_log).
moves_logger = logging.getLogger("campaigns.groups")

# States from which each kind of submission attempt has started a workflow (its run may exist).
_STARTED_SUBMISSION_STATES = {
    SubmissionState.SUBMITTING,
    SubmissionState.RUNNING,
    SubmissionState.SUCCEEDED,
    SubmissionState.FAILED,
    SubmissionState.LOST,
}


def record_history(*, campaign: Campaign, actor, changes: dict[str, Any], comment: str = "", action: str = "") -> None:
    from ..services import _record

    _record(campaign=campaign, actor=actor, action=action or HistoryAction.EXECUTION, changes=changes, comment=comment)


# --------------------------------------------------------------------------------------
# Notifications: sent (on commit) where the state changes, to whom the campaign's ``notify`` names
# --------------------------------------------------------------------------------------


def _notify(campaign: Campaign, event: str, subject: str, text: str, link: str) -> None:
    from ..notifications import notification_send

    if not (campaign.notify or {}).get("events"):
        return  # the common case: no notifications configured, no query
    try:
        with transaction.atomic():
            notification_send(campaign_id=campaign.pk, event=event, subject=subject, text=text, link=link)
    except Exception:  # a notification must never stop the executor
        logger.exception("Could not record the %s notification of campaign %s", event, campaign.pk)


def notify_group_failed(campaign: Campaign, group: Group, error: str) -> None:
    step_name = group.step.name
    _notify(
        campaign,
        NotificationEvent.GROUP_FAILED,
        f"[{campaign.name}] group {step_name}/{group.name} failed",
        f"Campaign {campaign.name}: group {group.name} of step {step_name} failed "
        f"(attempt {group.attempts}).\n\nError:\n{error or 'no message'}",
        reverse("campaigns:group", args=[campaign.pk, group.pk]),
    )


def _notify_step_awaiting_approval(step: Step, *, kind: str = StepHold.APPROVAL, why: str = "") -> None:
    """A step now awaits approval: ``step_awaiting_approval``, or ``quality_gate_failed`` when a failed gate holds it.

    A campaign that asks for ``quality_gate_failed`` gets that message alone for a gate hold (not both).
    """
    campaign = step.campaign
    link = reverse("campaigns:detail", args=[campaign.pk])
    if kind == StepHold.QUALITY_GATE:
        events = (campaign.notify or {}).get("events") or []
        text = (
            f"Campaign {campaign.name}: {why or 'a quality gate failed'}.\n\nStep {step.name} waits for a staff "
            "member to approve it (it starts despite the gate) or to cancel the campaign."
        )
        if NotificationEvent.QUALITY_GATE_FAILED in events:
            _notify(
                campaign,
                NotificationEvent.QUALITY_GATE_FAILED,
                f"[{campaign.name}] quality gate failed: step {step.name} awaits approval",
                text,
                link,
            )
            return
        _notify(
            campaign,
            NotificationEvent.STEP_AWAITING_APPROVAL,
            f"[{campaign.name}] step {step.name} awaits approval (a quality gate failed)",
            text,
            link,
        )
        return
    _notify(
        campaign,
        NotificationEvent.STEP_AWAITING_APPROVAL,
        f"[{campaign.name}] step {step.name} awaits approval",
        f"Campaign {campaign.name}: the steps that step {step.name} depends on are done; "
        f"it awaits a staff member's approval before its groups run.",
        link,
    )


def _notify_campaign_paused(campaign: Campaign, reason: str) -> None:
    _notify(
        campaign,
        NotificationEvent.CAMPAIGN_PAUSED,
        f"[{campaign.name}] campaign paused by the executor",
        f"Campaign {campaign.name} was paused by the executor: {reason}.\n\nRunning groups go on; nothing new is "
        "submitted until a staff member resumes it.",
        reverse("campaigns:detail", args=[campaign.pk]),
    )


def _notify_campaign_finished(campaign: Campaign, status: str, reason: str) -> None:
    _notify(
        campaign,
        NotificationEvent.CAMPAIGN_FINISHED,
        f"[{campaign.name}] campaign {status}",
        f"Campaign {campaign.name} {status}: {reason}."
        + (f"\nOutput collection: {campaign.output_collection}" if campaign.output_collection else ""),
        reverse("campaigns:detail", args=[campaign.pk]),
    )


def enqueue_groups(group_ids: Iterable[int]) -> None:
    """Send one ``group_run`` task per group once the current transaction commits."""
    ids = list(group_ids)
    if not ids:
        return

    def send() -> None:
        from ..tasks import group_run

        for group_id in ids:
            group_run.delay(group_id)

    transaction.on_commit(send)


def update_returning(model: Any, where: dict[str, Any], values: dict[str, Any], returning: list[str]) -> tuple | None:
    """``UPDATE ... SET values WHERE where RETURNING returning``: one statement, the row or ``None``.

    The ORM's ``update()`` returns a count only; a conditional update that also says what it
    matched saves the re-read. Plain values only (no expressions); field names, not columns.
    """
    meta = model._meta

    def column(name: str) -> str:
        field = meta.pk if name == "pk" else meta.get_field(name)
        return connection.ops.quote_name(field.column)

    sets = ", ".join(f"{column(k)} = %s" for k in values)
    conds = " AND ".join(f"{column(k)} = %s" for k in where)
    table, names = connection.ops.quote_name(meta.db_table), ", ".join(column(k) for k in returning)
    sql = f"UPDATE {table} SET {sets} WHERE {conds} RETURNING {names}"  # noqa: S608 - names from the model
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values.values(), *where.values()])
        return cursor.fetchone()


def record_transition(
    group_id: int,
    *,
    frm: str,
    to: str,
    reason: str = "",
    comment: str | None = None,
    actor_id: int | None = None,
    submission_id: int | None = None,
) -> None:
    """The ``GroupTransition`` row and the history entry of one group move, in ONE statement.

    A data-modifying CTE: the transition is inserted, and the history entry (campaign, its version,
    ``{"group <step>/<group>": [frm, to]}``) is written from the group's own row in the same
    ``INSERT``. ``comment`` defaults to ``reason`` (as :func:`move_group` records it).
    """
    q = connection.ops.quote_name
    now = timezone.now()
    if connection.vendor != "postgresql":
        # SQLite (make run) has no data-modifying CTE: the same two rows, in two statements.
        group = Group.objects.select_related("step__campaign").get(pk=group_id)
        GroupTransition.objects.create(
            group_id=group_id,
            from_status=frm,
            to_status=to,
            actor_id=actor_id,
            submission_id=submission_id,
            reason=reason[:2000],
            at=now,
        )
        campaign = group.step.campaign
        HistoryEntry.objects.create(
            campaign_id=campaign.pk,
            actor_id=actor_id,
            at=now,
            action=HistoryAction.EXECUTION,
            version=campaign.version,
            changes={f"group {group.step.name}/{group.name}": [frm, to]},
            comment=(reason if comment is None else comment).strip(),
        )
        _log_move(campaign.name, group.step.name, group.name, frm, to, reason)
        return
    # The names come back for the console line (the last SELECT reads the rows the CTEs joined; still one statement).
    sql = f"""
        WITH t AS (
            INSERT INTO {q(GroupTransition._meta.db_table)}
                (group_id, from_status, to_status, actor_id, submission_id, reason, at)
            VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING group_id
        ), names AS (
            SELECT c.id AS campaign_id, c.version, c.name AS campaign, s.name AS step, g.name AS grp
            FROM t
            JOIN {q(Group._meta.db_table)} g ON g.id = t.group_id
            JOIN {q(Step._meta.db_table)} s ON s.id = g.step_id
            JOIN {q(Campaign._meta.db_table)} c ON c.id = s.campaign_id
        ), h AS (
            INSERT INTO {q(HistoryEntry._meta.db_table)} (campaign_id, actor_id, at, action, version, changes, comment)
            SELECT campaign_id, %s, %s, %s, version,
                   jsonb_build_object('group ' || step || '/' || grp, jsonb_build_array(%s::text, %s::text)), %s
            FROM names
        )
        SELECT campaign, step, grp FROM names
    """  # noqa: S608 - table names from the models, values as parameters
    params: list[Any] = [group_id, frm, to, actor_id, submission_id, reason[:2000], now]
    params += [actor_id, now, str(HistoryAction.EXECUTION), frm, to, (reason if comment is None else comment).strip()]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is not None:
        _log_move(row[0], row[1], row[2], frm, to, reason)


def _log_move(campaign: str, step: str, group: str, frm: str, to: str, reason: str) -> None:
    """The one console line of a group move: ``w48-minidrp step1/night-20251121: ready → preflight (why)``."""
    where = f"{step}/{group}" if group else step
    why = reason.splitlines()[0][:200] if reason else ""
    moves_logger.info("%s %s: %s → %s%s", campaign, where, frm, to, f" ({why})" if why else "")


def move_group(
    group_id: int,
    *,
    to: str,
    frm: Iterable[str],
    actor=None,
    reason: str = "",
    submission: Submission | None = None,
    campaign: Campaign | None = None,
    locked: Group | None = None,
    **fields: Any,
) -> Group | None:
    """Move a group to ``to`` if it is in one of ``frm``; ``None`` (and no change) otherwise.

    ``locked``: the group, already read with a row lock in this transaction (the caller's
    ``select_for_update``), so it is not read again. Three statements a move otherwise: the locked
    read, the conditional update, and the transition and history rows in one ``INSERT``.
    """
    allowed = set(frm)
    # No savepoint when called inside a transaction: an error here aborts the caller's.
    with transaction.atomic(savepoint=False):
        if locked is not None:
            group = locked
        else:
            group = Group.objects.select_for_update(of=("self",)).select_related("step__campaign").get(pk=group_id)
        old = group.status
        if old not in allowed:
            return None
        now = timezone.now()
        updated = Group.objects.filter(pk=group_id, status=old).update(status=to, updated=now, **fields)
        if updated != 1:
            return None
        record_transition(
            group_id,
            frm=old,
            to=to,
            reason=reason,
            actor_id=getattr(actor, "pk", None),
            submission_id=submission.pk if submission is not None else None,
        )
        # What the update wrote, without reading the row again (F() expressions would need a read).
        if any(hasattr(value, "resolve_expression") for value in fields.values()):
            group.refresh_from_db()
        else:
            group.status, group.updated = to, now
            for key, value in fields.items():
                setattr(group, key, value)
        return group


def _set_step_status(step: Step, status: str, *, actor=None, reason: str = "", **fields: Any) -> bool:
    if step.status == status and not fields:
        return False
    old = step.status
    updated = Step.objects.filter(pk=step.pk, status=old).update(status=status, **fields)
    if updated != 1:
        return False
    for key, value in fields.items():
        setattr(step, key, value)
    step.status = status
    if old != status:
        record_history(
            campaign=step.campaign, actor=actor, changes={f"step {step.name}": [old, status]}, comment=reason
        )
        if status == StepStatus.AWAITING_APPROVAL:
            _notify_step_awaiting_approval(step, kind=fields.get("hold_kind") or StepHold.APPROVAL, why=reason)
    return True


def _set_campaign_status(campaign: Campaign, status: str, *, actor=None, reason: str = "") -> None:
    old = campaign.status
    if old == status:
        return
    Campaign.objects.filter(pk=campaign.pk).update(status=status, updated=timezone.now())
    campaign.status = status
    record_history(
        campaign=campaign, actor=actor, changes={"status": [old, status]}, comment=reason, action=HistoryAction.STATUS
    )
    if status in (CampaignStatus.SUCCEEDED, CampaignStatus.FAILED):
        _notify_campaign_finished(campaign, status, reason)
    if status == CampaignStatus.PAUSED and actor is None:
        _notify_campaign_paused(campaign, reason)


def campaign_pause_by_executor(campaign: Campaign, *, reason: str) -> bool:
    """The executor pauses a running campaign for a person (an error rule with the action ``pause`` matched).

    Running groups go on; nothing new is submitted until someone resumes it. The pause is recorded with no
    actor, which is how the inbox tells it from a person's pause. ``campaign`` is locked by the caller.
    """
    if campaign.status != CampaignStatus.RUNNING:
        return False
    _set_campaign_status(campaign, CampaignStatus.PAUSED, reason=reason)
    return True


def step_runs(step: Step) -> list[str]:
    """RUN collections of a step's groups: group by group, newest attempt first."""
    started = Submission.objects.filter(group__step=step, state__in=_STARTED_SUBMISSION_STATES)
    ordered = started.order_by("group__position", "group__name", "group_id", "-number")  # one query, not one a group
    return list(ordered.values_list("run_collection", flat=True))


def define_step_chains(campaign: Campaign, step: Step) -> None:
    """The step's CHAINED collection over its groups' runs, and the campaign's over its steps' chains."""
    from lsst_adapter.collections import define_chain

    repo = campaign.butler_repo.config_uri
    define_chain(repo, step.output_collection, step_runs(step))
    done = campaign.steps.filter(status=StepStatus.SUCCEEDED).exclude(output_collection="").order_by("-position")
    children = [s.output_collection for s in done]
    if step.output_collection not in children:
        children.insert(0, step.output_collection)
    define_chain(repo, campaign.output_collection, children + list(campaign.input_collections))


def _promote(campaign: Campaign, step: Step, *, actor, reason: str) -> list[int] | None:
    """A waiting step whose dependencies are done: ready (groups ready) or awaiting approval.

    ``None`` (and no change) while the metric checks of a dependency (quality gates, the freezing of a
    metric-conditioned input) are still being evaluated; a failed gate holds the step for approval.
    """
    from metrics.services import step_hold

    hold, why = step_hold(step)
    if hold == "pending":
        return None
    now = timezone.now()
    if hold == "hold" and step.approved_at is None:
        _set_step_status(
            step,
            StepStatus.AWAITING_APPROVAL,
            actor=actor,
            reason=why,
            hold_kind=StepHold.QUALITY_GATE,
            hold_reason=why,
            hold_since=now,
        )
        return []
    if step.requires_approval and step.approved_at is None:
        _set_step_status(
            step,
            StepStatus.AWAITING_APPROVAL,
            actor=actor,
            reason=reason,
            hold_kind=StepHold.APPROVAL,
            hold_reason=f"step {step.name} requires approval before it starts ({reason})",
            hold_since=now,
        )
        return []
    _set_step_status(step, StepStatus.READY, actor=actor, reason=reason)
    return ready_groups_of(step, actor=actor, reason=f"step {step.name} is ready", campaign=campaign)


def ready_groups_of(step: Step, *, actor, reason: str, campaign: Campaign) -> list[int]:
    """Every waiting group of ``step`` → ready, in bulk: one transition row per group, one history entry."""
    with transaction.atomic(savepoint=False):
        waiting = list(
            step.groups.select_for_update(of=("self",))
            .filter(status=GroupStatus.WAITING)
            .order_by("position", "pk")
            .values_list("pk", "name")
        )
        if not waiting:
            return []
        ids = [pk for pk, _ in waiting]
        Group.objects.filter(pk__in=ids).update(status=GroupStatus.READY, updated=timezone.now())
        GroupTransition.objects.bulk_create(
            [
                GroupTransition(
                    group_id=pk,
                    from_status=GroupStatus.WAITING,
                    to_status=GroupStatus.READY,
                    actor=actor,
                    reason=reason[:2000],
                )
                for pk in ids
            ],
            batch_size=1000,
        )
        record_history(
            campaign=campaign,
            actor=actor,
            changes={f"group {step.name}/{name}": [GroupStatus.WAITING, GroupStatus.READY] for _, name in waiting},
            comment=reason,
        )
    for _, name in waiting:
        _log_move(campaign.name, step.name, name, GroupStatus.WAITING, GroupStatus.READY, reason)
    return ids


def _step_status_from_groups(step: Step, statuses: list[str]) -> str:
    if statuses and all(s in GROUP_DONE_STATES for s in statuses):
        return StepStatus.SUCCEEDED
    if any(s in GROUP_ACTIVE_STATES for s in statuses):
        return StepStatus.RUNNING
    if any(s in (GroupStatus.READY, GroupStatus.WAITING) for s in statuses):
        return StepStatus.RUNNING if step.status == StepStatus.RUNNING else StepStatus.READY
    return StepStatus.FAILED


def roll_up(campaign_id: int, *, actor=None) -> list[int]:
    """Recompute steps and the campaign from their groups; promote steps whose dependencies are done.

    Returns the ids of groups made ready (and enqueued unless the campaign is paused).
    A failed group never stops its siblings or independent steps; the campaign fails only when
    nothing can proceed any more.
    """
    from lsst_adapter.registry import RepoError
    from metrics.services import step_check_request

    enqueue: list[int] = []
    checking = False  # a step waits for the metric checks of a dependency: work can still proceed
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().select_related("butler_repo", "owner").get(pk=campaign_id)
        if campaign.status not in (CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.FAILED):
            return []
        steps = list(campaign.steps.prefetch_related("depends_on").order_by("position"))
        by_pk = {s.pk: s for s in steps}
        for _ in range(len(steps) + 1):  # dependencies may point anywhere: repeat until stable
            changed = False
            for step in steps:
                if step.status == StepStatus.CANCELLED:
                    continue
                if step.status == StepStatus.WAITING:
                    deps = [by_pk[d.pk] for d in step.depends_on.all()]
                    if all(d.status == StepStatus.SUCCEEDED for d in deps):
                        names = ", ".join(d.name for d in deps) or "nothing"
                        promoted = _promote(campaign, step, actor=actor, reason=f"depends on {names}: done")
                        if promoted is None:
                            checking = True
                        else:
                            enqueue += promoted
                            changed = True
                    continue
                if step.status == StepStatus.AWAITING_APPROVAL:
                    continue
                statuses = list(step.groups.order_by().values_list("status", flat=True).distinct())  # a few rows
                new = _step_status_from_groups(step, statuses)
                if new == step.status:
                    continue
                if new == StepStatus.SUCCEEDED:
                    try:
                        define_step_chains(campaign, step)
                    except RepoError as exc:
                        logger.exception("Could not define the collections of %s", step)
                        _set_step_status(step, StepStatus.FAILED, reason=str(exc), error=str(exc))
                        changed = True
                        continue
                _set_step_status(step, new, reason="from its groups", error="")
                if new == StepStatus.SUCCEEDED:
                    step_check_request(step)
                changed = True
            if not changed:
                break

        if campaign.status == CampaignStatus.PAUSED:
            return enqueue  # made ready, but not sent: campaign_resume sends them
        if all(s.status in (StepStatus.SUCCEEDED, StepStatus.CANCELLED) for s in steps) and any(
            s.status == StepStatus.SUCCEEDED for s in steps
        ):
            _set_campaign_status(campaign, CampaignStatus.SUCCEEDED, reason="every step succeeded")
            return enqueue
        groups = Group.objects.filter(step__campaign=campaign)
        can_proceed = (
            groups.filter(status__in=[GroupStatus.READY, *GROUP_ACTIVE_STATES]).exists()
            or any(s.status == StepStatus.AWAITING_APPROVAL for s in steps)
            or bool(enqueue)
            or checking
        )
        if campaign.status == CampaignStatus.RUNNING and not can_proceed:
            _set_campaign_status(campaign, CampaignStatus.FAILED, reason="no work can proceed: failed groups")
        elif campaign.status == CampaignStatus.FAILED and can_proceed:
            _set_campaign_status(campaign, CampaignStatus.RUNNING, reason="work can proceed again")
        enqueue_groups(enqueue)
    return enqueue
