"""Quality gates and metric-conditioned inputs through the executor's state machine (no BPS here: results are
recorded with the adapter's own dataclasses, as in tests/execution/test_state_machine.py)."""

from __future__ import annotations

import pytest
from astropy.table import Table
from django.core.exceptions import ValidationError

from campaigns import services as campaign_services
from campaigns.choices import CampaignStatus, GroupStatus, HistoryAction, StepStatus
from campaigns.execution import campaign_launch, step_approve
from campaigns.models import Campaign
from campaigns.yaml_io import campaign_to_yaml, parse_campaign_yaml
from metrics import tasks as metric_tasks
from metrics.models import CheckState, GateResult, StepCheck, StepInputFreeze
from metrics.services import metric_values_ingest, step_check_run
from tagging.models import DataIdRow
from tests.execution.test_state_machine import _ok, _run
from tests.metrics.conftest import GOOD, OTHER

pytestmark = pytest.mark.django_db

STEPS_WITH_GATE = [
    {"name": "step1", "pipeline_subset": "step1", "quality_gates": ["psf_fwhm median < 1.1"]},
    {"name": "step2", "pipeline_subset": "step2", "depends_on": ["step1"]},
]
STEPS_WITH_INPUT = [
    {"name": "step1", "pipeline_subset": "step1"},
    {
        "name": "step2",
        "pipeline_subset": "step2",
        "depends_on": ["step1"],
        "metric_input": {"step": "step1", "metric": "psf_fwhm", "op": "<", "threshold": 1.2, "per": "visit"},
    },
]


@pytest.fixture
def sent(monkeypatch):
    """Tasks sent on commit, recorded instead of going to a broker."""
    from campaigns.tasks import group_run

    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(group_run, "delay", lambda pk: calls.append(("group_run", pk)))
    monkeypatch.setattr(metric_tasks.step_check_run, "delay", lambda pk: calls.append(("step_check_run", pk)))
    monkeypatch.setattr(metric_tasks.group_metrics_ingest, "delay", lambda pk: calls.append(("ingest", pk)))
    return calls


def _launch(make_exec_campaign, owner, steps) -> Campaign:
    campaign = make_exec_campaign(steps=steps)
    # One pre-defined group of one night (a list split leaving the other night out is refused at launch).
    campaign_services.step_groups_define(
        user=owner,
        campaign_id=campaign.pk,
        step_name="step1",
        groups=[{"name": "n1", "data_query": "day_obs = 20251121"}],
    )
    return campaign_launch(user=owner, campaign_id=campaign.pk)


def _finish_step1(campaign, owner, psf_by_exposure, django_capture_on_commit_callbacks):
    """Run step1's group to success, then ingest psf values for it as the pipeline would have written them."""
    group = campaign.steps.get(name="step1").groups.get()
    with django_capture_on_commit_callbacks(execute=True):
        submission = _run(group, _ok())
    records = [
        {"exposure": exposure, "detector": detector, "run": submission.run_collection, "psf_fwhm": value}
        for exposure, values in psf_by_exposure.items()
        for detector, value in enumerate(values)
    ]
    report = metric_values_ingest(
        user=owner, campaign_id=campaign.pk, records=records, action="psfMetrics", units={"psf_fwhm": "arcsec"}
    )
    assert report.rejected == 0
    return submission


def test_a_failing_gate_holds_the_dependent_step_until_a_staff_member_approves(
    make_exec_campaign, owner, sent, django_capture_on_commit_callbacks
):
    campaign = _launch(make_exec_campaign, owner, STEPS_WITH_GATE)
    _finish_step1(campaign, owner, {GOOD: [1.3, 1.25], OTHER: [1.2, 1.4]}, django_capture_on_commit_callbacks)
    step1, step2 = campaign.steps.order_by("position")
    group = step1.groups.get()
    assert ("ingest", group.pk) in sent and ("step_check_run", step1.pk) in sent
    step2.refresh_from_db()
    campaign.refresh_from_db()
    # While the gate is evaluated the dependent step waits, and the campaign is not failed for it.
    assert step2.status == StepStatus.WAITING and campaign.status == CampaignStatus.RUNNING
    assert StepCheck.objects.get(step=step1).state == CheckState.PENDING

    check = step_check_run(step_id=step1.pk)
    assert check is not None and (check.state, check.passed) == (CheckState.DONE, False)
    assert step_check_run(step_id=step1.pk) is None  # a second delivery does nothing
    result = GateResult.objects.get(step=step1)
    assert (result.text, result.count, result.metric) == ("psf_fwhm median < 1.1", 4, "psfMetrics.psf_fwhm")
    assert result.measured == pytest.approx(1.275) and not result.passed
    step2.refresh_from_db()
    assert step2.status == StepStatus.AWAITING_APPROVAL
    assert not step2.groups.filter(status=GroupStatus.READY).exists()
    assert campaign.history.filter(comment__contains="psf_fwhm median < 1.1: measured 1.275").exists()

    step_approve(user=owner, step_id=step2.pk, comment="seeing was bad all week; go on")
    step2.refresh_from_db()
    assert step2.status == StepStatus.READY and step2.approved_by == owner
    assert campaign.history.filter(action=HistoryAction.APPROVE, comment__contains="seeing was bad").exists()


def test_a_passing_gate_lets_the_dependent_step_start(
    make_exec_campaign, owner, sent, django_capture_on_commit_callbacks
):
    campaign = _launch(make_exec_campaign, owner, STEPS_WITH_GATE)
    _finish_step1(campaign, owner, {GOOD: [0.9, 1.0], OTHER: [0.95, 1.3]}, django_capture_on_commit_callbacks)
    step1, step2 = campaign.steps.order_by("position")
    step_check_run(step_id=step1.pk)
    assert GateResult.objects.get(step=step1).passed
    step2.refresh_from_db()
    assert step2.status == StepStatus.READY
    assert step2.groups.filter(status=GroupStatus.READY).exists()


def test_a_metric_conditioned_input_is_frozen_as_a_dataid_set_that_constrains_the_groups(
    make_exec_campaign, owner, sent, django_capture_on_commit_callbacks
):
    campaign = _launch(make_exec_campaign, owner, STEPS_WITH_INPUT)
    # Per visit (one-to-one with exposures here), the median over detectors: GOOD 1.05 passes, OTHER 1.35 fails.
    _finish_step1(campaign, owner, {GOOD: [1.0, 1.1], OTHER: [1.3, 1.4]}, django_capture_on_commit_callbacks)
    step1, step2 = campaign.steps.order_by("position")
    assert step2.status == StepStatus.WAITING
    step_check_run(step_id=step1.pk)
    freeze = StepInputFreeze.objects.select_related("version__dataid_set").get(step=step2)
    assert (freeze.selected, freeze.rejected) == (1, 1)
    assert freeze.text == "visits whose step1 psf_fwhm median < 1.2"
    version = freeze.version
    assert version.dimensions == ["instrument", "visit"] and version.count == 1
    assert list(DataIdRow.objects.filter(version=version).values_list("visit", flat=True)) == [GOOD]
    assert "psf_fwhm median < 1.2" in version.dataid_set.reason and campaign.name in version.comment
    assert "step step2" in version.comment
    for group in step2.groups.all():
        assert group.data_id_table == freeze.table_path
    table = Table.read(freeze.table_path, format="ascii.ecsv")
    assert list(table["visit"]) == [GOOD] and list(table["instrument"]) == ["DemoCam"]
    step2.refresh_from_db()
    assert step2.status == StepStatus.READY


def test_gates_and_inputs_are_checked_in_the_definition_with_the_path_of_each_error(owner, butler_repo):
    bad = [
        {"name": "step1", "quality_gates": ["psf_fwhm median", {"metric": "psf_fwhm", "op": "=", "threshold": "x"}]},
        {"name": "step2", "depends_on": ["step1"], "quality_gates": [{"metric": "a", "statistic": "p200", "op": "<"}]},
        {
            "name": "step3",
            "metric_input": {"step": "step1", "metric": "psf", "op": "<", "threshold": 1, "per": "tract"},
        },
    ]
    with pytest.raises(ValidationError) as err:
        campaign_services.campaign_create(user=owner, data=_definition(steps=bad))
    errors = err.value.message_dict
    assert "is not 'METRIC [STATISTIC] OP THRESHOLD'" in errors["steps[0].quality_gates[0]"][0]
    assert "'=' is not one of" in errors["steps[0].quality_gates[1].op"][0]
    assert "finite number" in errors["steps[0].quality_gates[1].threshold"][0]
    assert "Unknown statistic 'p200'" in errors["steps[1].quality_gates[0].statistic"][0]
    assert "finite number" in errors["steps[1].quality_gates[0].threshold"][0]
    assert "not a step this one depends on" in errors["steps[2].metric_input.step"][0]
    assert "'tract' is not one of" in errors["steps[2].metric_input.per"][0]


def test_gates_and_inputs_survive_a_yaml_round_trip(owner, butler_repo):
    step2 = {**STEPS_WITH_INPUT[1], "quality_gates": ["psf_fwhm median < 1.1"]}
    campaign = campaign_services.campaign_create(user=owner, data=_definition(steps=[STEPS_WITH_INPUT[0], step2]))
    text = campaign_to_yaml(campaign)
    assert "quality_gates:" in text and "metric_input:" in text and "threshold: 1.1" in text
    again = parse_campaign_yaml(text)
    assert again["steps"][1]["quality_gates"] == [
        {"metric": "psf_fwhm", "statistic": "median", "op": "<", "threshold": 1.1}
    ]
    assert again["steps"][1]["metric_input"]["threshold"] == 1.2


def _definition(**overrides):
    from tests.conftest import definition

    data = definition(name="gates-" + str(abs(hash(str(overrides))) % 10_000), **overrides)
    return data


def test_a_retried_group_is_ingested_from_its_latest_fresh_attempt_only(make_exec_campaign, owner, sent):
    from campaigns.execution import group_retry
    from metrics.services import metrics_ingest_group
    from tests.execution.test_state_machine import _failed

    campaign = _launch(make_exec_campaign, owner, STEPS_WITH_GATE)
    group = campaign.steps.get(name="step1").groups.get()
    first = _run(group, _failed())
    group_retry(user=owner, group_id=group.pk, comment="transient")
    second = _run(group, _ok())
    report = metrics_ingest_group(group_id=group.pk)
    # No run collection exists here (no BPS): each attempt read is reported; the superseded one is not read.
    assert [p["where"] for p in report.problems] == [second.run_collection]
    assert first.run_collection != second.run_collection


def test_the_api_takes_gates_and_inputs_and_names_their_errors(api, owner, butler_repo):
    steps = [STEPS_WITH_GATE[0], {**STEPS_WITH_INPUT[1], "quality_gates": [{"metric": "x", "op": "<"}]}]
    response = api(owner).post("/api/v1/campaigns/", _definition(steps=steps), format="json")
    assert response.status_code == 400
    assert "finite number" in response.json()["steps[1].quality_gates[0].threshold"][0]
    steps[1] = STEPS_WITH_INPUT[1]
    response = api(owner).post("/api/v1/campaigns/", _definition(steps=steps), format="json")
    assert response.status_code == 201, response.content
    step1, step2 = Campaign.objects.get(pk=response.json()["id"]).steps.order_by("position")
    assert step1.quality_gates == [{"metric": "psf_fwhm", "statistic": "median", "op": "<", "threshold": 1.1}]
    assert step2.metric_input["per"] == "visit"


def test_a_check_whose_worker_died_is_made_pending_and_sent_again(
    make_exec_campaign, owner, sent, django_capture_on_commit_callbacks
):
    import socket
    import subprocess
    import sys

    from django.utils import timezone

    from campaigns.execution.runner import reconcile_groups

    campaign = _launch(make_exec_campaign, owner, STEPS_WITH_GATE)
    _finish_step1(campaign, owner, {GOOD: [1.0, 1.05], OTHER: [0.9, 1.0]}, django_capture_on_commit_callbacks)
    step1, step2 = campaign.steps.order_by("position")
    # A worker claimed the check, then died (a real process that has exited: its pid is gone).
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    StepCheck.objects.filter(step=step1).update(
        state=CheckState.RUNNING, worker_host=socket.gethostname(), worker_pid=dead.pid, claimed=timezone.now()
    )
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        outcome = reconcile_groups()
    assert outcome.get("step_checks_requeued") == 1 and sent == [("step_check_run", step1.pk)]
    check = StepCheck.objects.get(step=step1)
    assert check.state == CheckState.PENDING and f":{dead.pid} died" in check.error
    # Sent again, it is evaluated and the dependent step goes on.
    check = step_check_run(step_id=step1.pk)
    assert check is not None and (check.state, check.passed, check.error) == (CheckState.DONE, True, "")
    step2.refresh_from_db()
    assert step2.status != StepStatus.AWAITING_APPROVAL


def test_a_check_whose_worker_is_alive_is_left_alone(
    make_exec_campaign, owner, sent, django_capture_on_commit_callbacks
):
    import os
    import socket

    import psutil

    from metrics.services import step_checks_reconcile

    campaign = _launch(make_exec_campaign, owner, STEPS_WITH_GATE)
    _finish_step1(campaign, owner, {GOOD: [1.0, 1.05], OTHER: [0.9, 1.0]}, django_capture_on_commit_callbacks)
    step1 = campaign.steps.get(name="step1")
    me = os.getpid()
    StepCheck.objects.filter(step=step1).update(
        state=CheckState.RUNNING,
        worker_host=socket.gethostname(),
        worker_pid=me,
        worker_pid_started=psutil.Process(me).create_time(),
    )
    assert step_checks_reconcile() == 0
    assert StepCheck.objects.get(step=step1).state == CheckState.RUNNING
