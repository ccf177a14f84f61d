"""A two-step campaign through the real task functions, real BPS + Parsl (local_threads) and real pipetask.

step1 is split by night into 2 groups; a fault injected for one data ID fails one quantum of the first
night. The other night succeeds regardless. The fault is then removed from the campaign's BPS settings
and the failed group rescued (only the failed quantum runs again, in a new RUN of the same chain).
step2 (one group of 4 visits) requires approval; once approved it runs, and its visitSummary datasets are found through the
campaign's CHAINED collection. Tasks are called in this process (no broker) to stay deterministic.
"""

from __future__ import annotations

import time

import pytest

from campaigns import services
from campaigns.choices import CampaignStatus, GroupStatus, StepStatus, SubmissionState
from campaigns.execution import campaign_launch, group_rescue, step_approve, step_split_set
from campaigns.models import QuantumError
from tests.execution.conftest import CLUSTER_BY_EXPOSURE, run_ready_groups

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

FAIL = (2025112100151, 1)
TIMINGS: dict[str, float] = {}


def test_two_step_campaign_with_a_failure_a_rescue_and_an_approval(make_exec_campaign, owner, butler_root):
    from lsst.daf.butler import Butler

    fault = {"step1": {"failDataIds": [f"exposure:{FAIL[0]},detector:{FAIL[1]}"]}}
    campaign = make_exec_campaign(
        bps={
            "compute_site": "local_threads",
            "wms": "parsl",
            "extra": {**CLUSTER_BY_EXPOSURE, "config_overrides": fault},
        }
    )
    step2 = campaign.steps.get(name="step2")
    step_split_set(user=owner, step_id=step2.pk, split={"by": "visit", "max_size": 10})  # one group of 4 visits
    campaign = campaign_launch(user=owner, campaign_id=campaign.pk)
    step1, step2 = campaign.steps.order_by("position")
    bad, good = step1.groups.order_by("position")

    started = time.monotonic()
    run_ready_groups(campaign)
    TIMINGS["step1"] = time.monotonic() - started
    bad.refresh_from_db()
    good.refresh_from_db()
    assert good.status == GroupStatus.SUCCEEDED and good.quanta_succeeded == 4
    assert bad.status == GroupStatus.FAILED and (bad.quanta_total, bad.quanta_failed) == (4, 1)
    (error,) = QuantumError.objects.filter(submission__group=bad)
    assert error.data_id == {"instrument": "DemoCam", "exposure": FAIL[0], "detector": FAIL[1]}
    assert error.exception_type.endswith("InjectedFailure") and "failDataIds" in error.message
    assert error.log_location
    step2.refresh_from_db()
    assert step2.status == StepStatus.WAITING

    # Fix the cause (drop the fault injection), then rescue: only the failed quantum runs again.
    campaign.refresh_from_db()
    bps = dict(campaign.bps)
    bps["extra"] = dict(CLUSTER_BY_EXPOSURE)
    services.campaign_update(user=owner, campaign_id=campaign.pk, version=campaign.version, data={"bps": bps})
    rescue = group_rescue(user=owner, group_id=bad.pk, comment="fault fixed")
    started = time.monotonic()
    run_ready_groups(campaign)
    TIMINGS["rescue"] = time.monotonic() - started
    rescue.refresh_from_db()
    bad.refresh_from_db()
    assert rescue.state == SubmissionState.SUCCEEDED and rescue.quanta_total == 1
    assert bad.status == GroupStatus.SUCCEEDED and bad.run_collection.endswith("/attempt2")

    step1.refresh_from_db()
    step2.refresh_from_db()
    assert step1.status == StepStatus.SUCCEEDED
    assert step2.status == StepStatus.AWAITING_APPROVAL
    assert run_ready_groups(campaign) == []  # nothing runs before approval

    step_approve(user=owner, step_id=step2.pk, comment="step1 looks good")
    started = time.monotonic()
    run_ready_groups(campaign)
    TIMINGS["step2"] = time.monotonic() - started
    campaign.refresh_from_db()
    step2.refresh_from_db()
    assert step2.status == StepStatus.SUCCEEDED
    assert campaign.status == CampaignStatus.SUCCEEDED

    butler = Butler.from_config(butler_root)
    try:
        chain = butler.collections.get_info(campaign.output_collection)
        assert list(chain.children[:2]) == [step2.output_collection, step1.output_collection]
        visits = {
            ref.dataId["visit"] for ref in butler.query_datasets("visitSummary", collections=campaign.output_collection)
        }
        assert visits == {2025112100150, 2025112100151, 2025112200150, 2025112200151}
        summaries = butler.query_datasets("calexpSummary", collections=campaign.output_collection)
        assert len(summaries) == 8  # the rescued quantum included
        summary = butler.get(
            "visitSummary", collections=campaign.output_collection, instrument="DemoCam", visit=FAIL[0]
        )
        assert summary["n_detectors"] == 2
    finally:
        butler.close()
    print("\nexecutor e2e timings (s): " + ", ".join(f"{k}={v:.1f}" for k, v in TIMINGS.items()))


def test_a_remote_wms_run_is_recorded_at_once_and_finished_by_the_poller(make_exec_campaign, owner):
    """The non-blocking path (HTCondor, PanDA) with the no-op WMS: submit returns a run id, the beat task polls."""
    from campaigns.execution.runner import poll_running_groups
    from campaigns.models import Campaign

    campaign = make_exec_campaign(steps=[{"name": "step1", "pipeline_subset": "step1"}])
    # "noop" is the adapter's test WMS, not a choice people get: set it directly.
    Campaign.objects.filter(pk=campaign.pk).update(bps={"wms": "noop", "compute_site": "local"})
    step = campaign.steps.get()
    services.step_groups_define(
        user=owner,
        campaign_id=campaign.pk,
        step_name="step1",
        groups=[{"name": "one", "data_query": "exposure.seq_num = 150"}],
    )
    campaign_launch(user=owner, campaign_id=campaign.pk)
    assert run_ready_groups(campaign) == ["submitted"]
    group = step.groups.get()
    sub = group.submissions.get()
    assert group.status == GroupStatus.RUNNING and sub.state == SubmissionState.RUNNING
    assert sub.wms_run_id == sub.submit_dir and sub.quanta_total == 4
    assert poll_running_groups()["finished"] == 1
    group.refresh_from_db()
    sub.refresh_from_db()
    assert group.status == GroupStatus.SUCCEEDED and sub.state == SubmissionState.SUCCEEDED
    assert poll_running_groups() == {"polled": 0, "finished": 0}


def test_an_empty_quantum_graph_fails_the_group_in_preflight(make_exec_campaign, owner):
    campaign = make_exec_campaign(steps=[{"name": "step1", "pipeline_subset": "step1"}])
    step = campaign.steps.get()
    # The registry has these exposures, but the where also asks for a detector that has no raws.
    services.step_groups_define(
        user=owner,
        campaign_id=campaign.pk,
        step_name="step1",
        groups=[{"name": "none", "data_query": "detector = 8 AND exposure.seq_num = 150"}],
    )
    campaign_launch(user=owner, campaign_id=campaign.pk)
    assert run_ready_groups(campaign) == ["failed: empty QuantumGraph"]
    group = step.groups.get()
    assert group.status == GroupStatus.FAILED and "empty QuantumGraph" in group.error
