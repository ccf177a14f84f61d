"""Campaigns in front of a person, built with the executor's own services (no BPS): a step awaiting approval and
a failed group. Results are recorded with the adapter's plain dataclasses, as ``lsst_adapter.bps.progress()``
returns them after a real run (see test_state_machine.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from campaigns.execution import campaign_launch, step_split_set
from campaigns.execution.runner import submission_claim, submission_record_prepared, submission_record_result
from campaigns.models import Campaign, Group, Step, Submission
from campaigns.services import step_groups_define
from lsst_adapter.bps import FailedQuantum, GroupProgress, PreparedWorkflow

FAIL_ID = {"instrument": "DemoCam", "exposure": 2025112100151, "detector": 1}
MESSAGE = "Injected failure in step1 for data ID {detector=1,exposure=2025112100151,instrument=DemoCam}"

# step1 (one group) done → step2 awaits approval; "extra" is independent, one of its two groups fails.
STEPS = [
    {"name": "step1", "pipeline_subset": "step1"},
    {"name": "step2", "pipeline_subset": "step2", "depends_on": ["step1"], "requires_approval": True},
    {"name": "extra", "pipeline_subset": "step1"},
]
# One pre-defined group of one night (the split check would refuse a list split that leaves the other night out).
ONE_NIGHT = [{"name": "n1", "data_query": "exposure.day_obs = 20251121"}]


def ok() -> GroupProgress:
    return GroupProgress(
        total=4,
        succeeded=4,
        state="SUCCEEDED",
        finished=True,
        by_task={"step1": {"total": 4, "succeeded": 4, "failed": 0, "running": 0, "pending": 0, "blocked": 0}},
    )


def failed(message: str = MESSAGE, exc: str = "demo_pipeline.tasks.InjectedFailure", data_id=None) -> GroupProgress:
    return GroupProgress(
        total=4,
        succeeded=3,
        failed=1,
        state="FAILED",
        finished=True,
        by_task={"step1": {"total": 4, "succeeded": 3, "failed": 1, "running": 0, "pending": 0, "blocked": 0}},
        failures=[FailedQuantum("step1", dict(data_id or FAIL_ID), exc, message, log="/tmp/job.stderr")],
    )


def run(group: Group, progress: GroupProgress) -> Submission:
    """What group_run does around a real BPS run, with the run's outcome given."""
    sub = submission_claim(group_id=group.pk, task_id="t1", worker_name="w@h")
    assert sub is not None, f"{group} was not claimed"
    prepared = PreparedWorkflow(
        run_name=sub.run_collection.replace("/", "_"),
        submit_dir=sub.submit_dir,
        qgraph_file=f"{sub.submit_dir}/g.qg",
        quanta=4,
        quanta_by_task={"step1": 4},
        jobs=6,
        wms_service_class="lsst.ctrl.bps.parsl.ParslService",
        butler_config="repo",
        output=sub.output_collection,
        output_run=sub.run_collection,
        prepare_seconds=0.1,
    )
    assert submission_record_prepared(submission_id=sub.pk, prepared=prepared)
    done = submission_record_result(submission_id=sub.pk, progress=progress)
    assert done is not None
    return done


@dataclass
class Waiting:
    campaign: Campaign
    step2: Step
    failed_group: Group


def waiting_campaign(make_exec_campaign, owner, *, step2_split: dict | None = None, **overrides: Any) -> Waiting:
    """A launched campaign whose step2 awaits approval and one of whose groups (extra/night-20251121) failed;
    ``step2_split`` is set (a definition edit) before the launch."""
    campaign = make_exec_campaign(steps=STEPS, **overrides)
    step1 = campaign.steps.get(name="step1")
    step_groups_define(user=owner, campaign_id=step1.campaign_id, step_name=step1.name, groups=ONE_NIGHT)
    if step2_split is not None:
        step_split_set(user=owner, step_id=campaign.steps.get(name="step2").pk, split=step2_split)
    campaign_launch(user=owner, campaign_id=campaign.pk)
    run(step1.groups.get(), ok())
    extra = campaign.steps.get(name="extra")
    bad, good = extra.groups.order_by("position")
    run(bad, failed())
    run(good, ok())
    campaign.refresh_from_db()
    step2 = campaign.steps.get(name="step2")
    assert step2.status == "awaiting_approval", step2.status
    bad.refresh_from_db()
    assert bad.status == "failed"
    return Waiting(campaign=campaign, step2=step2, failed_group=bad)
