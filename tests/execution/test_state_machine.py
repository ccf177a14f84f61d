"""The executor's state machine without BPS: claims, results, error rules, roll-up, people's actions, reconciliation.

Results are recorded with the adapter's own plain dataclasses (``GroupProgress``, ``FailedQuantum``),
exactly what ``lsst_adapter.bps.progress()`` returns after a real run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from campaigns.choices import CampaignStatus, GroupStatus, StepStatus, SubmissionKind, SubmissionState
from campaigns.execution import (
    campaign_launch,
    campaign_pause,
    campaign_resume,
    error_rule_create,
    error_rule_update,
    group_accept,
    group_cancel,
    group_rescue,
    group_retry,
    step_approve,
)
from campaigns.execution.runner import (
    reconcile_groups,
    submission_claim,
    submission_record_prepared,
    submission_record_result,
)
from campaigns.models import Group, QuantumError, Submission
from campaigns.tasks import group_run
from lsst_adapter.bps import FailedQuantum, GroupProgress, PreparedWorkflow

pytestmark = pytest.mark.django_db

FAIL_ID = {"instrument": "DemoCam", "exposure": 2025112100151, "detector": 1}


def _prepared(sub: Submission, quanta: int = 4) -> PreparedWorkflow:
    return PreparedWorkflow(
        run_name=sub.run_collection.replace("/", "_"),
        submit_dir=sub.submit_dir,
        qgraph_file=f"{sub.submit_dir}/g.qg",
        quanta=quanta,
        quanta_by_task={"step1": quanta},
        jobs=quanta + 2,
        wms_service_class="lsst.ctrl.bps.parsl.ParslService",
        butler_config="repo",
        output=sub.output_collection,
        output_run=sub.run_collection,
        prepare_seconds=0.1,
    )


def _ok() -> GroupProgress:
    return GroupProgress(total=4, succeeded=4, state="SUCCEEDED", finished=True)


def _failed(message: str = "Injected failure: matches failDataIds", exc: str = "InjectedFailure") -> GroupProgress:
    return GroupProgress(
        total=4,
        succeeded=3,
        failed=1,
        state="FAILED",
        finished=True,
        failures=[FailedQuantum("step1", dict(FAIL_ID), exc, message, log="/tmp/job.log")],
    )


def _run(group: Group, progress: GroupProgress) -> Submission:
    """What group_run does around a real BPS run, with the run's outcome given."""
    sub = submission_claim(group_id=group.pk, task_id="t1", worker_name="w@h")
    assert sub is not None
    assert submission_record_prepared(submission_id=sub.pk, prepared=_prepared(sub))
    done = submission_record_result(submission_id=sub.pk, progress=progress)
    assert done is not None
    return done


@pytest.fixture
def launched(make_exec_campaign, owner):
    campaign = make_exec_campaign()
    campaign_launch(user=owner, campaign_id=campaign.pk)
    step1, step2 = campaign.steps.order_by("position")
    g1, g2 = step1.groups.order_by("position")
    return campaign, step1, step2, g1, g2


def test_a_group_is_claimed_once_and_records_its_attempt(launched):
    _campaign, step1, _, g1, _ = launched
    sub = submission_claim(group_id=g1.pk, task_id="t1", worker_name="w@h")
    assert sub is not None and submission_claim(group_id=g1.pk) is None
    assert group_run(g1.pk) == "not claimed"  # a second delivery of the task does nothing
    g1.refresh_from_db()
    step1.refresh_from_db()
    assert g1.status == GroupStatus.PREFLIGHT and g1.attempts == 1 and step1.status == StepStatus.RUNNING
    assert sub.number == 1 and sub.kind == SubmissionKind.SUBMIT and sub.state == SubmissionState.PREFLIGHT
    assert sub.run_collection == f"{g1.output_collection}/attempt1" == g1.run_collection
    assert sub.worker_pid and sub.worker_host and Path(sub.submit_dir).name.startswith("attempt1-")
    assert submission_record_prepared(submission_id=sub.pk, prepared=_prepared(sub))
    sub.refresh_from_db()
    g1.refresh_from_db()
    assert sub.state == SubmissionState.SUBMITTING and sub.bps_run_name and g1.status == GroupStatus.RUNNING
    assert g1.quanta_total == 4
    assert list(g1.transitions.values_list("from_status", "to_status")) == [
        ("waiting", "ready"),
        ("ready", "preflight"),
        ("preflight", "running"),
    ]


def test_a_failed_group_does_not_stop_its_sibling_and_accepting_it_completes_the_step(launched, owner):
    campaign, step1, step2, g1, g2 = launched
    failed = _run(g1, _failed())
    assert failed.state == SubmissionState.FAILED and "InjectedFailure" in failed.error
    (error,) = QuantumError.objects.filter(submission=failed)
    assert error.data_id == FAIL_ID and error.task_label == "step1" and error.action == ""
    g1.refresh_from_db()
    assert g1.status == GroupStatus.FAILED and g1.quanta_failed == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING  # g2 can still run

    _run(g2, _ok())
    step1.refresh_from_db()
    campaign.refresh_from_db()
    assert step1.status == StepStatus.FAILED and campaign.status == CampaignStatus.FAILED  # nothing can proceed

    with pytest.raises(ValidationError, match="comment"):
        group_accept(user=owner, group_id=g1.pk, comment=" ")
    group_accept(user=owner, group_id=g1.pk, comment="one detector of one exposure is fine to lose")
    step1.refresh_from_db()
    step2.refresh_from_db()
    campaign.refresh_from_db()
    assert step1.status == StepStatus.SUCCEEDED
    assert step2.status == StepStatus.AWAITING_APPROVAL and campaign.status == CampaignStatus.RUNNING
    assert {g.status for g in step2.groups.all()} == {GroupStatus.WAITING}

    with pytest.raises(ValidationError, match="comment"):
        step_approve(user=owner, step_id=step2.pk, comment="")
    step_approve(user=owner, step_id=step2.pk, comment="step1 QA looks fine")
    step2.refresh_from_db()
    assert step2.status == StepStatus.READY and step2.approved_by == owner and step2.approval_comment
    assert {g.status for g in step2.groups.all()} == {GroupStatus.READY}
    for group in step2.groups.all():
        _run(group, _ok())
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCEEDED


def test_the_metrics_of_a_group_are_ingested_when_it_succeeds_or_is_accepted_not_when_it_fails(
    launched, owner, monkeypatch, django_capture_on_commit_callbacks
):
    from metrics import tasks as metric_tasks

    _campaign, _step1, _step2, g1, g2 = launched
    sent: list[int] = []
    monkeypatch.setattr(metric_tasks.group_metrics_ingest, "delay", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        _run(g1, _failed())
    assert sent == []  # a failed group waits for a person's decision
    with django_capture_on_commit_callbacks(execute=True):
        _run(g2, _ok())
    assert sent == [g2.pk]
    with django_capture_on_commit_callbacks(execute=True):
        group_accept(user=owner, group_id=g1.pk, comment="three of four quanta are enough")
    assert sent == [g2.pk, g1.pk]  # its successful quanta's bundles are ingested like a succeeded group's


def test_retry_and_rescue_queue_new_attempts_in_the_same_chain(launched, owner, other_staff):
    _campaign, _, _, g1, _ = launched
    first = _run(g1, _failed())
    with pytest.raises(PermissionDenied):
        group_retry(user=other_staff, group_id=g1.pk)
    retry = group_retry(user=owner, group_id=g1.pk, comment="flaky node")
    assert (retry.number, retry.kind, retry.state, retry.skip_existing_in) == (2, "retry", "queued", [])
    with pytest.raises(ValidationError):
        group_rescue(user=owner, group_id=g1.pk)  # it is ready now, not failed
    second = _run(Group.objects.get(pk=g1.pk), _failed())
    assert second.pk == retry.pk and second.run_collection.endswith("/attempt2")
    rescue = group_rescue(user=owner, group_id=g1.pk, comment="skip what is done")
    assert rescue.kind == "rescue" and rescue.skip_existing_in == [second.run_collection, first.run_collection]
    assert rescue.output_collection == first.output_collection
    g1.refresh_from_db()
    assert g1.status == GroupStatus.READY and g1.attempts == 3


def test_error_rules_retry_automatically_until_exhausted_or_ask_for_review(launched, owner, science_user):
    _, _, _, g1, g2 = launched
    with pytest.raises(PermissionDenied):
        error_rule_create(user=science_user, message_regex="x", action="fail")
    with pytest.raises(ValidationError):
        error_rule_create(user=owner, message_regex="(", action="fail")
    rule = error_rule_create(
        user=owner, task_label="step1", message_regex=r"Injected", action="auto-retry", max_retries=1
    )
    error_rule_create(user=owner, message_regex=r"OutOfMemory", action="review")

    first = _run(g1, _failed())
    g1.refresh_from_db()
    assert g1.status == GroupStatus.READY  # failed, then queued again by the rule
    assert QuantumError.objects.get(submission=first).rule == rule
    queued = g1.submissions.get(state="queued")
    assert queued.kind == "retry" and queued.requested_by is None
    _run(g1, _failed())
    g1.refresh_from_db()
    assert g1.status == GroupStatus.FAILED  # max_retries=1 used up
    assert list(g1.submissions.values_list("state", flat=True)) == ["failed", "failed"]

    _run(g2, _failed(message="OutOfMemoryError: killed", exc="MemoryError"))
    g2.refresh_from_db()
    assert g2.status == GroupStatus.FAILED and g2.needs_review
    error_rule_update(user=owner, rule_id=rule.pk, enabled=False)


def test_pause_keeps_ready_groups_ready_and_resume_lets_them_run(launched, owner):
    campaign, _, _, g1, _ = launched
    campaign_pause(user=owner, campaign_id=campaign.pk, comment="cluster maintenance")
    assert submission_claim(group_id=g1.pk) is None
    assert group_run(g1.pk) == "not claimed"
    g1.refresh_from_db()
    assert g1.status == GroupStatus.READY and not g1.submissions.exists()
    campaign_resume(user=owner, campaign_id=campaign.pk)
    assert submission_claim(group_id=g1.pk) is not None


def test_cancel_group_and_its_queued_attempt(launched, owner):
    campaign, step1, _, g1, g2 = launched
    group_cancel(user=owner, group_id=g1.pk, comment="bad night")
    g1.refresh_from_db()
    assert g1.status == GroupStatus.CANCELLED and submission_claim(group_id=g1.pk) is None
    _run(g2, _ok())
    step1.refresh_from_db()
    campaign.refresh_from_db()
    assert step1.status == StepStatus.FAILED and campaign.status == CampaignStatus.FAILED
    group_retry(user=owner, group_id=g1.pk, comment="the night is fine after all")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_reconcile_requeues_a_submission_lost_before_its_workflow_started_exactly_once(launched):
    _, _, _, g1, _ = launched
    sub = submission_claim(group_id=g1.pk)
    assert reconcile_groups() == {}  # our own process owns it: alive
    Submission.objects.filter(pk=sub.pk).update(worker_pid=_dead_pid())
    assert reconcile_groups() == {"requeued": 1}
    g1.refresh_from_db()
    sub.refresh_from_db()
    assert g1.status == GroupStatus.READY and sub.state == SubmissionState.QUEUED and sub.requeued == 1
    again = submission_claim(group_id=g1.pk)
    assert again.pk == sub.pk and again.number == 1 and again.submit_dir != ""  # same attempt, fresh submit dir
    Submission.objects.filter(pk=sub.pk).update(worker_pid=_dead_pid())
    assert reconcile_groups() == {"lost": 1}  # never twice
    g1.refresh_from_db()
    assert g1.status == GroupStatus.FAILED and "worker lost twice" in g1.error
    assert g1.submissions.count() == 1


def test_reconcile_fails_a_group_whose_workflow_had_started_when_its_worker_died(launched):
    _, _, _, g1, _ = launched
    sub = submission_claim(group_id=g1.pk)
    submission_record_prepared(submission_id=sub.pk, prepared=_prepared(sub))
    (Path(sub.submit_dir) / "parsl_runinfo").mkdir(parents=True)
    Submission.objects.filter(pk=sub.pk).update(worker_pid=_dead_pid())
    assert reconcile_groups() == {"lost": 1}
    g1.refresh_from_db()
    sub.refresh_from_db()
    assert sub.state == SubmissionState.LOST and g1.status == GroupStatus.FAILED and "worker lost" in g1.error
    assert reconcile_groups() == {}
