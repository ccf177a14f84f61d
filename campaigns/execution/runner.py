"""What the Celery tasks do: run one group through BPS, watch remote runs, reconcile lost workers.

The database is the truth, not Celery's redelivery: a task claims its group with a conditional
update (``ready`` → ``preflight``), records the BPS run name and submit directory (and commits)
before the workflow starts, and records its worker's host and pid so that
:func:`reconcile_groups` can tell a live run from an orphaned one.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.observability import bind_log_context
from core.patterns import PatternError, pattern_search

from ..choices import (
    GROUP_ACTIVE_STATES,
    CampaignStatus,
    ErrorAction,
    GroupStatus,
    StepStatus,
    SubmissionKind,
    SubmissionState,
)
from ..inputs import empty_table_problem, table_paths
from ..models import Campaign, ErrorRule, Group, QuantumError, Step, Submission
from ..signals import group_outputs_final
from . import planning
from .state import (
    campaign_pause_by_executor,
    move_group,
    notify_group_failed,
    record_transition,
    roll_up,
    update_returning,
)

logger = logging.getLogger(__name__)

BLOCKING_WMS = {"parsl"}  # the workflow runs inside run_prepared(): the task owns it
PARSL_RUN_DIR = "parsl_runinfo"  # bps/submit-template.yaml: site.*.run_dir = <submit_dir>/parsl_runinfo
_ACTIVE_SUBMISSION_STATES = [SubmissionState.PREFLIGHT, SubmissionState.SUBMITTING, SubmissionState.RUNNING]


# --------------------------------------------------------------------------------------
# Who owns a submission
# --------------------------------------------------------------------------------------


def _process_started(pid: int) -> float | None:
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:
        return None


def owner_alive(submission: Submission, *, now=None) -> bool:
    """Whether the worker process that owns ``submission`` may still be working on it (see ``process_alive``)."""
    return process_alive(
        host=submission.worker_host,
        pid=submission.worker_pid,
        pid_started=submission.worker_pid_started,
        since=submission.started or submission.created,
        now=now,
    )


def process_alive(*, host: str, pid: int | None, pid_started: float | None, since, now=None) -> bool:
    """Whether a worker process recorded as (host, pid, its start time) may still be working.

    Same host: the recorded pid must exist, with the recorded start time (pid reuse) and not a
    zombie. Another host cannot be checked: it is presumed alive for
    ``CM_RECONCILE_REMOTE_STALE_SECONDS`` after ``since``.
    """
    if host == socket.gethostname() and pid:
        import psutil

        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            started = process.create_time()
        except psutil.Error:
            return False
        return pid_started is None or abs(started - pid_started) < 1.0
    now = now or timezone.now()
    return now - since < timedelta(seconds=settings.CM_RECONCILE_REMOTE_STALE_SECONDS)


# --------------------------------------------------------------------------------------
# Claiming and preparing
# --------------------------------------------------------------------------------------


def submission_claim(*, group_id: int, task_id: str = "", worker_name: str = "") -> Submission | None:
    """Claim a ready group of a running campaign for this process; ``None`` if another did (or it is not ready).

    Four statements for a first attempt: the group with its step and campaign, the campaign row
    locked (a retried group: its queued attempt too); the conditional ``ready`` → ``preflight`` update, guarded by
    the status and attempt count read; the submission; the transition and history rows in one
    ``INSERT``. The returned submission carries its group, step, campaign and repo (no re-read).
    """
    with transaction.atomic():
        group = (
            Group.objects.select_for_update(of=("step__campaign",))  # the campaign row only: lock order campaign first
            .select_related("step__campaign__butler_repo")
            .filter(pk=group_id, step__campaign__status=CampaignStatus.RUNNING)
            .order_by("pk")  # not the models' orderings: one row
            .first()
        )
        if group is None:
            return None  # gone, or its campaign is paused, failed or over: ready groups stay ready
        if group.status != GroupStatus.READY:
            return None
        step = group.step
        campaign = step.campaign
        submission = None
        if group.attempts:  # a retry, rescue or requeue left a queued attempt (never so before the first one)
            submission = group.submissions.filter(state=SubmissionState.QUEUED).order_by("-number").first()
        attempts = group.attempts
        if submission is None:
            attempts = group.attempts + 1
            submission = Submission(
                group=group,
                number=attempts,
                kind=SubmissionKind.SUBMIT if attempts == 1 else SubmissionKind.RETRY,
                output_collection=group.output_collection,
                run_collection=planning.run_collection(group.output_collection, attempts),
            )
        group_values: dict[str, Any] = {
            "status": GroupStatus.PREFLIGHT,
            "updated": timezone.now(),
            "attempts": attempts,
            "run_collection": submission.run_collection,
            "error": "",
            "needs_review": False,
            "quanta_total": 0,
            "quanta_succeeded": 0,
            "quanta_failed": 0,
            "quanta_running": 0,
            "quanta_pending": 0,
        }
        # The status and attempt count read above must still hold: otherwise another worker (or a retry) won.
        claimed = Group.objects.filter(pk=group_id, status=GroupStatus.READY, attempts=group.attempts).update(
            **group_values
        )
        if claimed != 1:
            return None
        for key, value in group_values.items():
            setattr(group, key, value)
        bps = campaign.bps or {}
        token = uuid.uuid4().hex[:8]
        root = Path(settings.CM_SUBMIT_ROOT) / campaign.name / step.name / group.name
        submission.group = group
        submission.state = SubmissionState.PREFLIGHT
        submission.wms = bps.get("wms") or "parsl"
        submission.compute_site = bps.get("compute_site") or "local_threads"
        submission.submit_dir = str(root / f"attempt{submission.number}-{token}")
        submission.submit_yaml = str(root / f"attempt{submission.number}-{token}.yaml")
        submission.celery_task_id = task_id or ""
        submission.worker_name = (worker_name or "")[:255]
        submission.worker_host = socket.gethostname()[:255]
        submission.worker_pid = os.getpid()
        submission.worker_pid_started = _process_started(os.getpid())
        submission.started = timezone.now()
        submission.error = ""
        submission.save()
        record_transition(
            group.pk,
            frm=GroupStatus.READY,
            to=GroupStatus.PREFLIGHT,
            submission_id=submission.pk,
            reason=f"attempt {submission.number} ({submission.kind}) claimed by {submission.worker_name or 'a worker'}",
            comment=f"attempt {submission.number} ({submission.kind}) → {submission.run_collection}",
        )
        if step.status == StepStatus.READY:  # only the first claim of a step changes it
            Step.objects.filter(pk=step.pk, status=StepStatus.READY).update(status=StepStatus.RUNNING)
            step.status = StepStatus.RUNNING
        return submission


def build_spec(submission: Submission):
    """The :class:`lsst_adapter.bps.GroupSubmitSpec` of a claimed submission."""
    from lsst_adapter import bps as bps_adapter
    from lsst_adapter.collections import existing_collections

    group = submission.group
    step = group.step
    campaign = step.campaign
    repo = campaign.butler_repo.config_uri
    settings_bps = dict(campaign.bps or {})
    extra = dict(settings_bps.get("extra") or {})
    config_overrides = extra.pop("config_overrides", {}) or {}
    config_files = extra.pop("config_files", {}) or {}
    if config_overrides or config_files:
        # A campaign's overrides name the tasks of all its steps; pipetask refuses a label its subset lacks.
        from lsst_adapter.estimate import pipeline_labels
        from lsst_adapter.registry import RepoError

        try:
            labels = set(pipeline_labels(planning.step_pipeline(campaign, step)))
        except RepoError:
            labels = None  # pipetask itself will say what is wrong with the pipeline
        if labels is not None:
            config_overrides = {k: v for k, v in config_overrides.items() if k in labels}
            config_files = {k: v for k, v in config_files.items() if k in labels}
    upstream = [s.output_collection for s in step.depends_on.order_by("-position") if s.output_collection]
    inputs = list(dict.fromkeys([*upstream, *campaign.input_collections]))
    skip = existing_collections(repo, submission.skip_existing_in) if submission.skip_existing_in else []
    return bps_adapter.GroupSubmitSpec(
        pipeline_yaml=planning.step_pipeline(campaign, step),
        butler_config=repo,
        input_collections=inputs,
        data_query=group.where,
        output=submission.output_collection or group.output_collection,
        output_run=submission.run_collection,
        submit_dir=submission.submit_dir,
        payload_name=f"{campaign.name}-{step.name}-{group.name}",
        compute_site=submission.compute_site,
        wms=submission.wms,
        request_memory=int(settings_bps.get("request_memory") or 2048),
        request_cpus=int(settings_bps.get("request_cpus") or 1),
        data_id_tables=table_paths(group.data_id_table),
        skip_existing_in=skip,
        config_overrides=config_overrides,
        config_files=config_files,
        extra=extra,
    )


def submission_record_prepared(*, submission_id: int, prepared: Any) -> bool:
    """Record the BPS run name, submit dir and quanta count; group → running (Parsl) or submitting.

    Committed before the workflow starts, so a killed worker leaves a trace to reconcile from.
    False if the group was cancelled meanwhile (then nothing is submitted). Three statements: the
    conditional update of the submission (``preflight``), of the group, and the transition row
    with its history entry.
    """
    now = timezone.now()
    with transaction.atomic():
        row = update_returning(
            Submission,
            {"pk": submission_id, "state": SubmissionState.PREFLIGHT},
            {
                "state": SubmissionState.SUBMITTING,
                "bps_run_name": prepared.run_name[:255],
                "submit_dir": prepared.submit_dir,
                "quanta_total": prepared.quanta,
                "quanta_pending": prepared.quanta,
                "submitted": now,
            },
            ["group_id", "wms"],
        )
        if row is None:
            return False
        group_id, wms = row
        to = GroupStatus.RUNNING if wms in BLOCKING_WMS else GroupStatus.SUBMITTING
        moved = Group.objects.filter(pk=group_id, status=GroupStatus.PREFLIGHT).update(
            status=to,
            updated=now,
            quanta_total=prepared.quanta,
            quanta_pending=prepared.quanta,
            last_progress=now,
        )
        if moved != 1:
            transaction.set_rollback(True)  # the group left preflight (cancelled): the submission stays as it was
            return False
        record_transition(
            group_id,
            frm=GroupStatus.PREFLIGHT,
            to=to,
            submission_id=submission_id,
            reason=f"preflight passed: {prepared.quanta} quanta; submitting {prepared.run_name}",
        )
        return True


def submission_record_submitted(*, submission_id: int, run_id: str | None) -> None:
    """A remote WMS accepted the workflow: record its run id (the poller watches it from now on).

    Three statements: the conditional update of the submission, of the group, the transition row
    with its history entry.
    """
    with transaction.atomic():
        row = update_returning(
            Submission,
            {"pk": submission_id, "state": SubmissionState.SUBMITTING},
            {"state": SubmissionState.RUNNING, "wms_run_id": (run_id or "")[:255]},
            ["group_id", "wms"],
        )
        if row is None:
            return
        group_id, wms = row
        moved = Group.objects.filter(pk=group_id, status=GroupStatus.SUBMITTING).update(
            status=GroupStatus.RUNNING, updated=timezone.now()
        )
        if moved == 1:
            record_transition(
                group_id,
                frm=GroupStatus.SUBMITTING,
                to=GroupStatus.RUNNING,
                submission_id=submission_id,
                reason=f"submitted to {wms} as {run_id}",
            )


# --------------------------------------------------------------------------------------
# Results, error rules
# --------------------------------------------------------------------------------------


def match_rule(rules: list[ErrorRule], *, task_label: str, exception_type: str, message: str) -> ErrorRule | None:
    """The first enabled rule (by position) whose task label (blank = any) and regex match."""
    text = f"{exception_type}: {message}" if exception_type else message
    for rule in rules:
        if not rule.enabled or (rule.task_label and rule.task_label != task_label):
            continue
        try:
            if pattern_search(rule.message_regex, text):  # RE2: linear in the message, whatever the pattern
                return rule
        except PatternError:  # saved before patterns were checked with RE2; refused when edited
            logger.warning("error rule %s: pattern %r cannot run with RE2; skipped", rule.pk, rule.message_regex)
            continue
    return None


def _retries_used(group: Group, rule: ErrorRule, *, before: Submission) -> int:
    return (
        QuantumError.objects.filter(
            submission__group=group, rule=rule, action=ErrorAction.AUTO_RETRY, submission__number__lt=before.number
        )
        .values("submission")
        .distinct()
        .count()
    )


def _summary(progress: Any, error: str) -> str:
    parts = []
    if progress is not None and progress.failures:
        first = progress.failures[0]
        more = f" (and {len(progress.failures) - 1} more)" if len(progress.failures) > 1 else ""
        parts.append(f"{first.task_label} {first.data_id}: {first.exception_type} {first.message}".strip() + more)
    if error:
        parts.append(error)
    if progress is not None and not parts:
        parts.append(f"{progress.failed} failed, {progress.blocked} blocked of {progress.total} quanta")
    return "\n".join(parts)[:4000]


def _record_failure(submission: Submission, failure: Any, *, rule: ErrorRule | None, action: str) -> QuantumError:
    """One failed quantum of ``submission`` (a ``FailedQuantum`` of the adapter), with what the rules decided."""
    return QuantumError.objects.create(
        submission=submission,
        task_label=failure.task_label[:200],
        data_id=failure.data_id,
        exception_type=(failure.exception_type or "")[:300],
        message=failure.message or "",
        log_location=(failure.log or failure.log_dataset or "")[:1024],
        log_dataset=(failure.log_dataset or "")[:1024],
        rule=rule,
        action=action,
    )


def submission_record_result(
    *,
    submission_id: int,
    progress: Any | None,
    error: str = "",
    lost: bool = False,
    roll: bool = True,
    campaign: Campaign | None = None,
) -> Submission | None:
    """Record how a submission ended: counts, failed quanta, error rules, group state; then roll up.

    Safe to call twice: only a submission still submitting/running is recorded. ``roll=False``
    leaves the roll-up to the caller (the poll rolls up each campaign once, after all its results).
    ``campaign``: the submission's campaign, already locked by the caller in its transaction (the
    poll records many results in one); then the returned submission is not read again.
    """
    from .services import queue_attempt

    batched = campaign is not None
    if campaign is None:
        first = Submission.objects.select_related("group__step").filter(pk=submission_id).first()
        if first is None:
            return None
        campaign_id = first.group.step.campaign_id
    else:
        campaign_id = campaign.pk
    with transaction.atomic(savepoint=not batched):  # batched: inside the poll's transaction
        if campaign is None:
            campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        # Locks the submission, its group and step rows (the group is not read again by move_group).
        submission = Submission.objects.select_for_update().select_related("group__step").get(pk=submission_id)
        if submission.state not in _ACTIVE_SUBMISSION_STATES:
            return submission
        group = submission.group
        now = timezone.now()
        counts: dict[str, Any] = _quanta_counts(progress) if progress is not None else {}
        succeeded = progress is not None and progress.state == "SUCCEEDED" and not error and not lost
        decision = ErrorAction.FAIL
        rule_used: ErrorRule | None = None
        pause_rule: ErrorRule | None = None  # a matched rule asks to pause the whole campaign
        if not succeeded and not lost:
            rules = list(ErrorRule.objects.filter(enabled=True).order_by("position", "pk"))
            actions = []
            for failure in progress.failures if progress is not None else []:
                rule = match_rule(
                    rules, task_label=failure.task_label, exception_type=failure.exception_type, message=failure.message
                )
                action = rule.action if rule else ""
                if action == ErrorAction.AUTO_RETRY and rule is not None:
                    if _retries_used(group, rule, before=submission) >= rule.max_retries:
                        action = ErrorAction.FAIL
                    else:
                        rule_used = rule
                _record_failure(submission, failure, rule=rule, action=action)
                actions.append(action)
                if action == ErrorAction.PAUSE and pause_rule is None:
                    pause_rule = rule
            if actions and all(a == ErrorAction.AUTO_RETRY for a in actions) and not error:
                decision = ErrorAction.AUTO_RETRY
            elif actions and all(a in (ErrorAction.AUTO_RETRY, ErrorAction.REVIEW) for a in actions) and not error:
                decision = ErrorAction.REVIEW
        if lost and progress is not None:
            for failure in progress.failures:
                _record_failure(submission, failure, rule=None, action=ErrorAction.FAIL)
        message = "" if succeeded else _summary(progress, error)
        state = SubmissionState.SUCCEEDED if succeeded else SubmissionState.LOST if lost else SubmissionState.FAILED
        Submission.objects.filter(pk=submission.pk).update(
            state=state,
            error=message,
            finished=now,
            last_progress=now,
            **{k: v for k, v in counts.items() if k != "quanta_running"},
            quanta_running=0 if progress is None else progress.running,
            quanta_blocked=0 if progress is None else progress.blocked,
            **({"by_task": progress.by_task} if progress is not None and progress.by_task else {}),
        )
        reason = "all quanta succeeded" if succeeded else message.splitlines()[0] if message else "failed"
        moved = move_group(
            group.pk,
            to=GroupStatus.SUCCEEDED if succeeded else GroupStatus.FAILED,
            frm=GROUP_ACTIVE_STATES,
            reason=reason,
            submission=submission,
            campaign=campaign,
            locked=group,
            error=message,
            needs_review=decision == ErrorAction.REVIEW,
            last_progress=now,
            **counts,
        )
        if moved is not None and succeeded:
            group_outputs_final.send(sender=Group, group_id=group.pk, status=GroupStatus.SUCCEEDED)
        if moved is not None and not succeeded and not (decision == ErrorAction.AUTO_RETRY and rule_used is not None):
            notify_group_failed(campaign, moved, message)
        if moved is not None and pause_rule is not None:
            campaign_pause_by_executor(
                campaign,
                reason=f"error rule #{pause_rule.pk} (/{pause_rule.message_regex}/) matched a failure of group "
                f"{group.step.name}/{group.name}",
            )
        if moved is not None and decision == ErrorAction.AUTO_RETRY and rule_used is not None:
            queue_attempt(
                group.pk,
                kind=SubmissionKind.RETRY,
                user=None,
                reason=f"automatic retry (error rule #{rule_used.pk}: /{rule_used.message_regex}/)",
                campaign=campaign,
            )
        if roll:
            roll_up(campaign_id)
    if not batched:
        submission.refresh_from_db()
    return submission


def submission_fail(*, submission_id: int, error: str) -> None:
    """A submission failed before its workflow ran (preflight, or an error of ours)."""
    submission_record_result(submission_id=submission_id, progress=None, error=error)


# --------------------------------------------------------------------------------------
# The task body
# --------------------------------------------------------------------------------------


def run_group(*, group_id: int, task_id: str = "", worker_name: str = "") -> str:
    """Claim, preflight, record, run (Parsl: the whole workflow) and record the result of one group."""
    from lsst_adapter import bps
    from lsst_adapter.collections import collection_exists

    submission = submission_claim(group_id=group_id, task_id=task_id, worker_name=worker_name)
    if submission is None:
        return "not claimed"
    # The claim loaded the group with its step and campaign: no query for the log context.
    bind_log_context(campaign_id=submission.group.step.campaign_id, submission_id=submission.pk)
    try:
        spec = build_spec(submission)
        for table in spec.data_id_tables:
            problem = empty_table_problem(str(table))
            if problem:
                submission_fail(
                    submission_id=submission.pk, error=f"Preflight: {problem}; nothing to run, nothing submitted."
                )
                return "failed: empty data-ID table"
        yaml_path = Path(submission.submit_yaml)
        yaml_path.parent.mkdir(parents=True, exist_ok=True)
        yaml_path.write_text(bps.render_submit_yaml(spec))
        if collection_exists(spec.butler_config, spec.output_run):
            submission_fail(
                submission_id=submission.pk,
                error=f"Preflight: the output RUN collection {spec.output_run} already exists; "
                "retry the group to get a new one.",
            )
            return "failed: output run exists"
        try:
            prepared = bps.prepare(yaml_path)
        except bps.EmptyGraphError as exc:
            submission_fail(submission_id=submission.pk, error=f"empty QuantumGraph: nothing to run. {exc}")
            return "failed: empty QuantumGraph"
        except bps.BpsAdapterError as exc:
            submission_fail(submission_id=submission.pk, error=f"Preflight failed: {exc}")
            return "failed: preflight"
        if not submission_record_prepared(submission_id=submission.pk, prepared=prepared):
            return "not submitted: the group changed during preflight"
        try:
            result = bps.run_prepared(prepared)
        except bps.WorkflowError as exc:
            progress: Any = None
            try:
                progress = bps.progress(prepared.submit_dir)
            except Exception:
                logger.exception("No progress for %s", prepared.submit_dir)
            submission_record_result(submission_id=submission.pk, progress=progress, error=str(exc))
            return "failed: workflow error"
        if result.finished:
            done = submission_record_result(submission_id=submission.pk, progress=result.progress)
            return done.state if done else "recorded"
        submission_record_submitted(submission_id=submission.pk, run_id=result.run_id)
        return "submitted"
    except Exception as exc:
        logger.exception("group_run(%s) failed", group_id)
        submission_fail(submission_id=submission.pk, error=f"Executor error: {type(exc).__name__}: {exc}")
        raise


# --------------------------------------------------------------------------------------
# Watching remote runs (and Parsl progress)
# --------------------------------------------------------------------------------------


def _quanta_counts(progress: Any) -> dict[str, Any]:
    """The submission's quanta counts from a BPS progress report."""
    return {
        "quanta_total": progress.total,
        "quanta_succeeded": progress.succeeded,
        "quanta_failed": progress.failed,
        "quanta_running": progress.running,
        "quanta_pending": progress.pending,
    }


def _record_progress(submission: Submission, progress: Any) -> None:
    now = timezone.now()
    counts = _quanta_counts(progress)
    Submission.objects.filter(pk=submission.pk, state__in=_ACTIVE_SUBMISSION_STATES).update(
        last_progress=now, quanta_blocked=progress.blocked, by_task=progress.by_task or {}, **counts
    )
    Group.objects.filter(pk=submission.group_id, status__in=GROUP_ACTIVE_STATES).update(last_progress=now, **counts)


POLL_RESULTS_PER_TRANSACTION = 500  # finished runs recorded per commit by the poll


def _record_results(batch: list[tuple[int, int, Any]]) -> None:
    """Record finished runs (sorted by campaign) in ONE transaction: one commit, each campaign locked once.

    If any of them fails, the whole transaction is rolled back and each is recorded in its own, so
    that one bad result cannot hold back the others (recording is safe to repeat).
    """
    try:
        with transaction.atomic():
            locked: dict[int, Campaign] = {}
            for campaign_id, submission_id, progress in batch:
                if campaign_id not in locked:  # in campaign order: the lock order of every writer
                    locked[campaign_id] = Campaign.objects.select_for_update().get(pk=campaign_id)
                submission_record_result(
                    submission_id=submission_id, progress=progress, roll=False, campaign=locked[campaign_id]
                )
        return
    except Exception:
        if len(batch) == 1:
            raise
        logger.exception("Recording %d finished runs together failed; recording them one by one", len(batch))
    first_error: Exception | None = None
    for _, submission_id, progress in batch:
        try:
            submission_record_result(submission_id=submission_id, progress=progress, roll=False)
        except Exception as exc:
            logger.exception("Could not record the result of submission %s", submission_id)
            first_error = first_error or exc
    if first_error is not None:
        raise first_error  # the poll task reports it (the others are recorded)


def poll_running_groups() -> dict[str, int]:
    """Ask the WMS about remote runs (HTCondor, PanDA): record progress, and the result when over.

    Parsl runs are owned by their task; for them only the counts are refreshed (from the Butler).
    """
    from lsst_adapter import bps

    polled = finished = 0
    remote = (
        Submission.objects.filter(state=SubmissionState.RUNNING)
        .exclude(wms__in=BLOCKING_WMS)
        .exclude(wms_run_id="")
        .annotate(campaign_id=F("group__step__campaign_id"))
        .order_by("pk")  # not the models' orderings (four tables sorted): results are sorted by campaign below
    )
    over: list[tuple[int, int, Any]] = []  # (campaign id, submission id, final progress)
    for submission in remote:
        try:
            progress = bps.report(submission.wms, submission.wms_run_id)
        except Exception as exc:
            logger.warning("bps report of %s failed: %s", submission, exc)
            continue
        polled += 1
        if progress.finished or progress.state in ("SUCCEEDED", "FAILED", "DELETED"):
            over.append((submission.campaign_id, submission.pk, progress))
            finished += 1
        else:
            _record_progress(submission, progress)
    over.sort(key=lambda item: (item[0], item[1]))
    error: Exception | None = None
    for start in range(0, len(over), POLL_RESULTS_PER_TRANSACTION):
        try:
            _record_results(over[start : start + POLL_RESULTS_PER_TRANSACTION])
        except Exception as exc:  # the others are recorded: roll them up, then report it
            error = error or exc
    for campaign_id in sorted({campaign_id for campaign_id, _, _ in over}):  # once per campaign, not per group
        roll_up(campaign_id)
    if error is not None:
        raise error
    stale = timezone.now() - timedelta(seconds=settings.CM_PROGRESS_INTERVAL_SECONDS)
    local = Submission.objects.filter(
        state__in=[SubmissionState.SUBMITTING, SubmissionState.RUNNING], wms__in=BLOCKING_WMS
    ).exclude(submit_dir="")
    for parsl_run in local.filter(last_progress__lt=stale) | local.filter(last_progress__isnull=True):
        try:
            progress = bps.progress(parsl_run.submit_dir, with_failures=False)
        except Exception as exc:  # the graph may not be written yet
            logger.debug("No progress yet for %s: %s", parsl_run, exc)
            continue
        _record_progress(parsl_run, progress)
        polled += 1
    return {"polled": polled, "finished": finished}


def submission_cancel_remote(*, submission_id: int) -> str:
    """Ask the WMS to cancel a cancelled submission's run (ctrl_bps cancel API); record its answer.

    Safe to run twice: cancelling a run that is gone only records the WMS's answer again.
    """
    from lsst_adapter import bps

    submission = Submission.objects.filter(pk=submission_id).first()
    if submission is None or not submission.wms_run_id or submission.wms in BLOCKING_WMS:
        return "nothing to cancel"
    try:
        cancelled, text = bps.cancel(submission.wms, submission.wms_run_id)
    except Exception as exc:  # the WMS raises many kinds; record it for the operator
        cancelled, text = False, f"{type(exc).__name__}: {exc}"
    note = f"WMS cancel of {submission.wms} run {submission.wms_run_id}: " + (
        "done" if cancelled else f"not confirmed ({text or 'no answer'})"
    )
    Submission.objects.filter(pk=submission_id).update(error=f"{submission.error}\n{note}".strip()[:4000])
    logger.info(note)
    return "cancelled" if cancelled else "not cancelled"


# --------------------------------------------------------------------------------------
# Reconciliation after a lost worker
# --------------------------------------------------------------------------------------


def _run_started(submission: Submission) -> bool:
    """Whether the workflow of a submission may have started (then it must not be submitted again)."""
    from lsst_adapter.collections import collection_exists

    if submission.wms not in BLOCKING_WMS:
        return True  # a remote WMS may hold it even without a run id: a person decides
    submit_dir = Path(submission.submit_dir) if submission.submit_dir else None
    if submit_dir is not None and (submit_dir / PARSL_RUN_DIR).exists():
        return True
    try:
        repo = submission.group.step.campaign.butler_repo.config_uri
        return collection_exists(repo, submission.run_collection)
    except Exception:
        return True  # cannot tell: never risk a second submission


def reconcile_submission(*, submission_id: int) -> str:
    """Reconcile one submission whose worker is gone, from what was recorded and what is on disk."""
    from lsst_adapter import bps

    submission = Submission.objects.select_related("group__step__campaign__butler_repo").get(pk=submission_id)
    if submission.state not in _ACTIVE_SUBMISSION_STATES or owner_alive(submission):
        return "alive"
    who = f"{submission.worker_name or submission.worker_host} (pid {submission.worker_pid})"
    finished_file = Path(submission.submit_dir or "/nonexistent") / bps.FINISHED_FILE
    if submission.state != SubmissionState.PREFLIGHT and finished_file.exists():
        try:
            final = bps.progress(submission.submit_dir)
        except Exception as exc:
            submission_record_result(
                submission_id=submission.pk, progress=None, lost=True, error=f"worker lost: {who}; {exc}"
            )
            return "lost"
        submission_record_result(submission_id=submission.pk, progress=final)
        return "finished"
    if submission.state == SubmissionState.PREFLIGHT or not _run_started(submission):
        return _requeue(submission, who)
    progress: Any = None
    if submission.submit_dir and (Path(submission.submit_dir) / bps.WORKFLOW_FILE).exists():
        try:
            progress = bps.progress(submission.submit_dir, with_failures=False)
        except Exception:
            logger.warning("No progress for %s", submission.submit_dir)
    done = f"; {progress.succeeded} of {progress.total} quanta had succeeded" if progress is not None else ""
    submission_record_result(
        submission_id=submission.pk,
        progress=progress,
        lost=True,
        error=f"worker lost: {who} died while the workflow was running{done}. "
        "Its outputs were not registered; rescue the group to finish it.",
    )
    return "lost"


def _requeue(submission: Submission, who: str) -> str:
    """The workflow never started: queue the same attempt again, once."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=submission.group.step.campaign_id)
        locked = Submission.objects.select_for_update().get(pk=submission.pk)
        if locked.state not in _ACTIVE_SUBMISSION_STATES:
            return "already reconciled"
        if locked.requeued >= 1:
            pass  # fall through to "lost" below, outside this block
        else:
            updated = Submission.objects.filter(pk=locked.pk, state=locked.state, requeued=0).update(
                state=SubmissionState.QUEUED,
                requeued=1,
                error=f"worker lost before the workflow started: {who}; queued again (was {locked.submit_dir})",
            )
            if updated != 1:
                return "already reconciled"
            moved = move_group(
                locked.group_id,
                to=GroupStatus.READY,
                frm=GROUP_ACTIVE_STATES,
                reason=f"worker lost before the workflow started: {who}; queued again",
                submission=locked,
                campaign=campaign,
            )
            if moved is not None and campaign.status == CampaignStatus.RUNNING:
                from .state import enqueue_groups

                enqueue_groups([locked.group_id])
            return "requeued"
    submission_record_result(
        submission_id=submission.pk,
        progress=None,
        lost=True,
        error=f"worker lost twice before the workflow started (last: {who}); retry the group.",
    )
    return "lost"


def reconcile_groups() -> dict[str, int]:
    """Find submissions whose worker died and reconcile them; re-send ready groups that waited too long.

    Sending a ready group again is harmless (``group_run`` claims it at most once).
    """
    outcome: dict[str, int] = {}
    candidates = Submission.objects.filter(state__in=_ACTIVE_SUBMISSION_STATES).select_related(
        "group__step__campaign__butler_repo"
    )
    for submission in candidates:
        if submission.state == SubmissionState.RUNNING and submission.wms not in BLOCKING_WMS:
            continue  # a remote WMS owns it; poll_running_groups watches it
        if owner_alive(submission):
            continue
        result = reconcile_submission(submission_id=submission.pk)
        outcome[result] = outcome.get(result, 0) + 1
    stale = timezone.now() - timedelta(seconds=settings.CM_RECONCILE_READY_AFTER_SECONDS)
    waiting = Group.objects.filter(
        status=GroupStatus.READY, step__campaign__status=CampaignStatus.RUNNING, updated__lt=stale
    ).values_list("pk", flat=True)
    ids = list(waiting)
    if ids:
        from ..tasks import group_run

        for group_id in ids:
            group_run.delay(group_id)
        outcome["resent"] = len(ids)
    from metrics.services import step_checks_reconcile

    requeued = step_checks_reconcile()
    if requeued:
        outcome["step_checks_requeued"] = requeued
    return outcome
