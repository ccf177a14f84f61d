"""Services of the executor that people call (through views, the API and the CLI).

Each is keyword-only, atomic, checks ``access_campaign(user, id, "change")`` (staff only),
writes history entries and ``GroupTransition`` rows, and enqueues ``group_run`` tasks on commit.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from core.patterns import PatternError, compile_pattern
from core.roles import is_staff_member

from .. import coverage, inputs
from ..choices import (
    SUBMISSION_OPEN_STATES,
    CampaignStatus,
    ErrorAction,
    GroupStatus,
    HistoryAction,
    StepHold,
    StepStatus,
    SubmissionKind,
    SubmissionState,
)
from ..definition import snapshot
from ..models import CHANGE, Campaign, ErrorRule, Group, Step, Submission
from ..selectors import access_campaign
from ..signals import group_outputs_final
from ..splits import describe as describe_split
from . import planning
from .runner import BLOCKING_WMS
from .split_check import check_split
from .state import enqueue_groups, move_group, ready_groups_of, record_history, roll_up


def _require_staff(user) -> None:
    if not is_staff_member(user):
        raise PermissionDenied("Only staff members can run campaigns.")


def _comment_required(comment: str) -> str:
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": "A comment is required: say why."})
    return comment


def _locked_group(user, group_id: int) -> tuple[Campaign, Group]:
    group = Group.objects.select_related("step").filter(pk=group_id).first()
    if group is None:
        from django.http import Http404

        raise Http404("No such group.")
    campaign = access_campaign(user, group.step.campaign_id, CHANGE, for_update=True)
    _require_staff(user)
    group = Group.objects.select_for_update(of=("self",)).select_related("step").get(pk=group_id)
    return campaign, group


def _locked_step(user, step_id: int) -> tuple[Campaign, Step]:
    step = Step.objects.filter(pk=step_id).first()
    if step is None:
        from django.http import Http404

        raise Http404("No such step.")
    campaign = access_campaign(user, step.campaign_id, CHANGE, for_update=True)
    _require_staff(user)
    return campaign, Step.objects.select_for_update().get(pk=step_id)


# --------------------------------------------------------------------------------------
# Definition of the split (before launch)
# --------------------------------------------------------------------------------------


@transaction.atomic
def step_split_set(*, user, step_id: int, split: dict[str, Any], comment: str = "") -> Step:
    """Set how a step is cut into groups (only before launch): a definition edit, recorded in the history.

    The same rule can be given in the definition itself (``steps[i].split``: YAML, API, form)."""
    from ..splits import is_default, split_or_raise

    campaign, step = _locked_step(user, step_id)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.READY):
        raise ValidationError({"split": "The split of a launched campaign cannot change."})
    clean = split_or_raise(split, repo_label=campaign.butler_repo_id)
    if clean == (step.split or planning.DEFAULT_SPLIT):
        return step
    before = snapshot(campaign)["steps"]
    step.split = clean
    step.save(update_fields=["split"])
    after = snapshot(campaign)["steps"]
    campaign.version += 1
    campaign.save(update_fields=["version", "updated"])
    record_history(
        campaign=campaign,
        actor=user,
        changes={"steps": [before, after]},
        comment=comment or f"Step {step.name} split {'by night' if is_default(clean) else 'changed'}.",
        action=HistoryAction.EDIT,
    )
    return step


# --------------------------------------------------------------------------------------
# Launch
# --------------------------------------------------------------------------------------


@transaction.atomic
def campaign_launch(*, user, campaign_id: int, comment: str = "") -> Campaign:
    """Plan every step into groups, freeze their selections and start the steps that depend on nothing."""
    from lsst_adapter.collections import open_repo_check
    from lsst_adapter.registry import RepoError

    campaign = access_campaign(user, campaign_id, CHANGE, for_update=True)
    _require_staff(user)
    if campaign.archived:
        raise ValidationError({"status": "An archived campaign cannot be launched."})
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.READY):
        raise ValidationError(
            {"status": f"Only a draft or ready campaign can be launched; this one is {campaign.status}."}
        )
    steps = list(campaign.steps.order_by("position"))
    planning.require_launchable(steps, campaign.pipeline)
    repo = campaign.butler_repo
    plan: list[tuple[Step, list[planning.PlannedGroup]]] = []
    checks: list[str] = []
    try:
        open_repo_check(repo.config_uri)
        planner = planning.Planner.for_steps(campaign, steps)
        resolved = planner.resolved
        shapes: dict[str, Any] = {}
        for step in steps:
            groups, check = plan_step(planner, step, shapes=shapes)
            plan.append((step, groups))
            if check.state == "unchecked":
                checks.append(f"{step.name}: {check.note}")
    except RepoError as exc:
        raise ValidationError({"butler_repo": str(exc)}) from exc

    changes: dict[str, Any] = {}
    if not campaign.output_collection:
        campaign.output_collection = planning.campaign_collection(campaign)
        changes["output_collection"] = ["", campaign.output_collection]

    old_status = campaign.status
    campaign.version += 1
    table = ""
    if resolved is not None:
        # One table for every group (pipetask joins it with each group's where); empty, it fails their preflight.
        table = str(inputs.write_table(campaign, resolved))
        changes["data-ID sets"] = [None, f"{resolved.text} → {len(resolved.rows)} data IDs ({table})"]
    fields = ["position", "where", "status", "output_collection", "data_id_table"]
    for step, groups in plan:
        existing = {g.name: g for g in step.groups.all()}
        Group.objects.filter(step=step).exclude(name__in=[g.name for g in groups]).delete()
        new_groups: list[Group] = []
        old_groups: list[Group] = []
        for position, planned in enumerate(groups):
            group = existing.get(planned.name) or Group(step=step, name=planned.name)
            group.position = position
            group.where = planned.where
            group.status = GroupStatus.WAITING
            group.output_collection = planning.group_collection(campaign, step, planned.name)
            own = (
                str(inputs.write_split_table(campaign, step.name, planned.name, planned.table)) if planned.table else ""
            )
            group.data_id_table = "\n".join(p for p in (table, own) if p)
            # Field checks only: names are unique by construction (split rules refuse duplicates).
            group.full_clean(exclude=["step"], validate_unique=False, validate_constraints=False)
            (old_groups if group.pk else new_groups).append(group)
        Group.objects.bulk_create(new_groups, batch_size=1000)
        if old_groups:
            Group.objects.bulk_update(old_groups, fields, batch_size=1000)
        step.output_collection = planning.step_collection(campaign, step)
        step.status = StepStatus.WAITING
        step.error = ""
        step.save(update_fields=["output_collection", "status", "error"])
    campaign.status = CampaignStatus.RUNNING
    campaign.save(update_fields=["status", "output_collection", "version", "updated"])
    summary = "; ".join(f"{s.name}: {len(g)} group(s)" for s, g in plan)
    record_history(
        campaign=campaign,
        actor=user,
        action=HistoryAction.LAUNCH,
        changes={"status": [old_status, CampaignStatus.RUNNING], **changes},
        comment=(comment.strip() + "\n" if comment.strip() else "")
        + f"Planned {summary}."
        + "".join(f"\nSplit {note}." for note in checks),
    )
    roll_up(campaign.pk, actor=user)
    # Which exposures each group covers (the exposure page): worked out by a task, off the launch's path.
    coverage.campaign_coverage_record_enqueue(campaign.pk)
    campaign.refresh_from_db()
    return campaign


def plan_step(planner: planning.Planner, step: Step, *, shapes: dict[str, Any] | None = None):
    """(groups, split check) of one step: refused (``ValidationError``) when the split makes no group or
    would drop or duplicate data. ``shapes`` caches pipeline shapes by pipeline URI."""
    from lsst_adapter.estimate import pipeline_shape
    from lsst_adapter.registry import RepoError

    campaign = planner.campaign
    groups = planner.groups(step)
    if not groups:
        raise ValidationError(
            {"steps": f"Step {step.name} selects no data: its split ({describe_split(step.split)}) made no groups."}
        )
    uri = planning.step_pipeline(campaign, step)
    shapes = {} if shapes is None else shapes
    if uri not in shapes:
        try:
            shapes[uri] = pipeline_shape(uri, campaign.butler_repo.config_uri, list(campaign.input_collections or []))
        except RepoError as exc:
            # Named as the user wrote it: where the server found the file is not theirs to see.
            raise ValidationError({"pipeline": planning.pipeline_message(str(exc), campaign)}) from exc
    check = check_split(
        campaign=campaign,
        step=step,
        groups=groups,
        shape=shapes[uri],
        where=planning.step_where(campaign, step),
        tables=planner.tables,
    )
    return groups, check


# --------------------------------------------------------------------------------------
# People's interventions
# --------------------------------------------------------------------------------------


@transaction.atomic
def step_approve(*, user, step_id: int, comment: str) -> Step:
    """Approve a step that awaits approval: its groups become ready and are submitted."""
    comment = _comment_required(comment)
    campaign, step = _locked_step(user, step_id)
    if step.status != StepStatus.AWAITING_APPROVAL:
        raise ValidationError({"status": f"Step {step.name} is {step.status}, not awaiting approval."})
    now = timezone.now()
    Step.objects.filter(pk=step.pk).update(
        status=StepStatus.READY,
        approved_by=user,
        approved_at=now,
        approval_comment=comment,
        hold_kind=StepHold.NONE,
        hold_reason="",
        hold_since=None,
    )
    step.refresh_from_db()
    record_history(
        campaign=campaign,
        actor=user,
        action=HistoryAction.APPROVE,
        changes={f"step {step.name}": [StepStatus.AWAITING_APPROVAL, StepStatus.READY]},
        comment=comment,
    )
    ready = ready_groups_of(step, actor=user, reason=f"step {step.name} approved: {comment}", campaign=campaign)
    if campaign.status == CampaignStatus.RUNNING:
        enqueue_groups(ready)
    roll_up(campaign.pk, actor=user)
    return step


def _new_attempt(group: Group, *, kind: str, user, skip_existing_in: list[str]) -> Submission:
    number = group.attempts + 1
    Group.objects.filter(pk=group.pk).update(attempts=number)
    group.attempts = number
    return Submission.objects.create(
        group=group,
        number=number,
        kind=kind,
        state=SubmissionState.QUEUED,
        output_collection=group.output_collection,
        run_collection=planning.run_collection(group.output_collection, number),
        skip_existing_in=skip_existing_in,
        requested_by=user,
    )


def queue_attempt(group_id: int, *, kind: str, user, reason: str, campaign: Campaign) -> Submission:
    """A new attempt (retry or rescue) of a failed or cancelled group: a queued Submission, group ready."""
    group = Group.objects.select_for_update(of=("self",)).get(pk=group_id)
    if group.status not in (GroupStatus.FAILED, GroupStatus.CANCELLED):
        raise ValidationError(
            {"status": f"Only a failed or cancelled group can be retried; {group.name} is {group.status}."}
        )
    previous = group.submissions.exclude(state__in=[SubmissionState.QUEUED, SubmissionState.CANCELLED])
    skip: list[str] = []
    if kind == SubmissionKind.RESCUE:
        skip = [s.run_collection for s in previous.order_by("-number")]
        if not skip:
            raise ValidationError({"status": f"Group {group.name} has no earlier run to rescue; retry it instead."})
    submission = _new_attempt(group, kind=kind, user=user, skip_existing_in=skip)
    move_group(
        group.pk,
        to=GroupStatus.READY,
        frm=[GroupStatus.FAILED, GroupStatus.CANCELLED],
        actor=user,
        reason=reason,
        submission=submission,
        campaign=campaign,
        needs_review=False,
        error="",
    )
    if campaign.status == CampaignStatus.FAILED:
        from .state import _set_campaign_status

        _set_campaign_status(campaign, CampaignStatus.RUNNING, actor=user, reason=f"{kind} of group {group.name}")
    if campaign.status == CampaignStatus.RUNNING:
        enqueue_groups([group.pk])
    return submission


@transaction.atomic
def group_retry(*, user, group_id: int, comment: str = "") -> Submission:
    """Run a failed (or cancelled) group again from scratch: a new attempt with a fresh RUN collection."""
    campaign, group = _locked_group(user, group_id)
    submission = queue_attempt(
        group.pk, kind=SubmissionKind.RETRY, user=user, reason=comment or "retry requested", campaign=campaign
    )
    roll_up(campaign.pk, actor=user)
    return submission


@transaction.atomic
def group_rescue(*, user, group_id: int, comment: str = "") -> Submission:
    """Finish a failed group: a new attempt in the same chain that skips what earlier runs produced."""
    campaign, group = _locked_group(user, group_id)
    submission = queue_attempt(
        group.pk, kind=SubmissionKind.RESCUE, user=user, reason=comment or "rescue requested", campaign=campaign
    )
    roll_up(campaign.pk, actor=user)
    return submission


@transaction.atomic
def group_accept(*, user, group_id: int, comment: str) -> Group:
    """Accept a failed group as it is (it counts as done for its step)."""
    comment = _comment_required(comment)
    campaign, group = _locked_group(user, group_id)
    moved = move_group(
        group.pk,
        to=GroupStatus.ACCEPTED,
        frm=[GroupStatus.FAILED],
        actor=user,
        reason=comment,
        campaign=campaign,
        needs_review=False,
    )
    if moved is None:
        raise ValidationError({"status": f"Only a failed group can be accepted; {group.name} is {group.status}."})
    # Its successful quanta's outputs stand: their metrics are ingested as a succeeded group's are.
    group_outputs_final.send(sender=Group, group_id=group.pk, status=GroupStatus.ACCEPTED)
    roll_up(campaign.pk, actor=user)
    return moved


@transaction.atomic
def group_cancel(*, user, group_id: int, comment: str = "") -> Group:
    """Cancel a group: it will not be submitted again.

    A run on a remote WMS (HTCondor, PanDA) is cancelled there too, through ctrl_bps's cancel API
    (the ``wms_cancel`` task, after the commit). A running Parsl workflow is not stopped; its result is ignored.
    """
    campaign, group = _locked_group(user, group_id)
    frm = [GroupStatus.WAITING, GroupStatus.READY, GroupStatus.FAILED, GroupStatus.PREFLIGHT]
    frm += [GroupStatus.SUBMITTING, GroupStatus.RUNNING]
    moved = move_group(
        group.pk, to=GroupStatus.CANCELLED, frm=frm, actor=user, reason=comment or "cancelled", campaign=campaign
    )
    if moved is None:
        raise ValidationError({"status": f"Group {group.name} is {group.status} and cannot be cancelled."})
    open_submissions = Submission.objects.filter(group=group, state__in=SUBMISSION_OPEN_STATES)
    remote = list(open_submissions.exclude(wms_run_id="").exclude(wms__in=BLOCKING_WMS).values_list("pk", flat=True))
    open_submissions.update(
        state=SubmissionState.CANCELLED, finished=timezone.now(), error="cancelled by " + user.username
    )
    roll_up(campaign.pk, actor=user)
    if remote:
        from ..tasks import wms_cancel

        # The WMS is asked after the commit, by a worker: a slow or unreachable WMS never holds the request.
        def send() -> None:
            for submission_id in remote:
                wms_cancel.delay(submission_id)

        transaction.on_commit(send)
    return moved


@transaction.atomic
def campaign_pause(*, user, campaign_id: int, comment: str = "") -> Campaign:
    """No new submissions; running groups finish; ready groups stay ready."""
    from .state import _set_campaign_status

    campaign = access_campaign(user, campaign_id, CHANGE, for_update=True)
    _require_staff(user)
    if campaign.status != CampaignStatus.RUNNING:
        raise ValidationError({"status": f"Only a running campaign can be paused; this one is {campaign.status}."})
    _set_campaign_status(campaign, CampaignStatus.PAUSED, actor=user, reason=comment or "paused")
    return campaign


@transaction.atomic
def campaign_resume(*, user, campaign_id: int, comment: str = "") -> Campaign:
    """Resume a paused campaign: its ready groups are sent again."""
    from .state import _set_campaign_status

    campaign = access_campaign(user, campaign_id, CHANGE, for_update=True)
    _require_staff(user)
    if campaign.status != CampaignStatus.PAUSED:
        raise ValidationError({"status": f"Only a paused campaign can be resumed; this one is {campaign.status}."})
    _set_campaign_status(campaign, CampaignStatus.RUNNING, actor=user, reason=comment or "resumed")
    ready = list(Group.objects.filter(step__campaign=campaign, status=GroupStatus.READY).values_list("pk", flat=True))
    enqueue_groups(ready)
    roll_up(campaign.pk, actor=user)
    return campaign


@transaction.atomic
def step_input_table_set(*, step_id: int, path: str, comment: str) -> int:
    """Constrain every group of a step with a data-ID table (``--data-id-table``): the step's input was frozen
    from a metric condition (metrics.services). Done by the system, before the step starts."""
    step = Step.objects.select_related("campaign").get(pk=step_id)
    changed = 0
    for group in Group.objects.filter(step=step).select_for_update():
        # Keep the campaign's DataID-set table: pipetask ANDs several --data-id-table options.
        kept = [
            p for p in inputs.table_paths(group.data_id_table) if inputs.is_sets_table(p) or inputs.is_split_table(p)
        ]
        value = "\n".join([*kept, path])
        if value != group.data_id_table:
            Group.objects.filter(pk=group.pk).update(data_id_table=value)
            changed += 1
    record_history(
        campaign=step.campaign, actor=None, changes={f"step {step.name} input": [None, path]}, comment=comment
    )
    if changed:  # the groups now cover less: their exposures are recorded again
        coverage.campaign_coverage_record_enqueue(step.campaign_id)
    return changed


# --------------------------------------------------------------------------------------
# Error rules (global, staff)
# --------------------------------------------------------------------------------------

_RULE_FIELDS = ("task_label", "message_regex", "action", "max_retries", "enabled", "position", "comment")


_RULE_INT_MAX = 2**31 - 1  # the columns are 32-bit integers


def _clean_rule(data: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    unknown = set(data) - set(_RULE_FIELDS)
    if unknown:
        raise ValidationError({k: "Unknown field." for k in sorted(unknown)})
    if "message_regex" in data:
        try:
            compile_pattern(data["message_regex"] or "")
        except PatternError as exc:
            errors["message_regex"] = str(exc)
        if not (data["message_regex"] or "").strip():
            errors["message_regex"] = "Required."
    if "action" in data and data["action"] not in ErrorAction.values:
        errors["action"] = f"One of {', '.join(ErrorAction.values)}."
    for key in ("max_retries", "position"):
        if key in data and (
            isinstance(data[key], bool) or not isinstance(data[key], int) or not 0 <= data[key] <= _RULE_INT_MAX
        ):
            errors[key] = f"A whole number from 0 to {_RULE_INT_MAX}."
    if errors:
        raise ValidationError(errors)
    return data


@transaction.atomic
def error_rule_create(
    *,
    user,
    message_regex: str,
    action: str,
    task_label: str = "",
    max_retries: int = 1,
    enabled: bool = True,
    position: int | None = None,
    comment: str = "",
) -> ErrorRule:
    """A rule mapping failures (task label, message pattern) to an action; appended last unless ``position``."""
    _require_staff(user)
    if position is None:
        last = ErrorRule.objects.order_by("-position").values_list("position", flat=True).first()
        position = 0 if last is None else last + 1
        if position > _RULE_INT_MAX:
            raise ValidationError({"position": ["The last rule is at the highest position; give this one a position."]})
    data = _clean_rule(
        {
            "task_label": task_label.strip(),
            "message_regex": message_regex,
            "action": action,
            "max_retries": max_retries,
            "enabled": enabled,
            "position": position,
            "comment": comment,
        }
    )
    return ErrorRule.objects.create(created_by=user, **data)


@transaction.atomic
def error_rule_update(*, user, rule_id: int, **changes: Any) -> ErrorRule:
    _require_staff(user)
    rule = ErrorRule.objects.select_for_update().filter(pk=rule_id).first()
    if rule is None:
        raise Http404("No such error rule.")
    for key, value in _clean_rule(dict(changes)).items():
        setattr(rule, key, value)
    rule.save()
    return rule


@transaction.atomic
def error_rule_delete(*, user, rule_id: int) -> None:
    _require_staff(user)
    deleted, _ = ErrorRule.objects.filter(pk=rule_id).delete()
    if not deleted:
        raise Http404("No such error rule.")  # deleting nothing is not a success
