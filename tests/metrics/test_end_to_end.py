"""The loop back with the real middleware: a two-step campaign run through BPS + Parsl and pipetask.

step1 has a quality gate; step2 takes only the visits whose step1 ``psf_fwhm`` (median over detectors) is
below a threshold. When step1's group succeeds its metric bundles are ingested (the task the executor sends),
the gate is evaluated and step2's input is frozen as a DataID set whose data-ID table makes step2's
QuantumGraph hold only the selected visit. Tasks are called in this process (no broker), in the order the
executor sends them.
"""

from __future__ import annotations

import math

import pytest

from campaigns.choices import CampaignStatus, GroupStatus, StepStatus
from campaigns.execution import campaign_launch, step_split_set
from lsst_adapter.demo import plan_exposures, raw_content
from metrics import tasks as metric_tasks
from metrics.models import GateResult, MetricValue, StepInputFreeze
from tests.execution.conftest import SCIENCE, run_ready_groups

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

NIGHT = 20251121
VISITS = (2025112100150, 2025112100151)


def _expected_psf() -> dict[int, float]:
    """The median step1 psf_fwhm of each visit (detectors 0 and 1), from the demo pipeline's formula."""
    specs = {s.exposure_id: s for s in plan_exposures((20251121, 20251122), science_per_night=4)}
    out = {}
    for visit in VISITS:
        values = [round(math.hypot(raw_content(specs[visit], d)["seeing_arcsec"], 0.25), 4) for d in (0, 1)]
        out[visit] = sum(values) / 2
    return out


def test_metrics_are_ingested_after_a_real_run_and_decide_what_the_next_step_processes(
    make_exec_campaign, owner, butler_root, monkeypatch, django_capture_on_commit_callbacks
):
    from lsst.daf.butler import Butler

    from campaigns.tasks import group_run

    psf = _expected_psf()
    keep, drop = sorted(VISITS, key=lambda v: psf[v])
    threshold = round((psf[keep] + psf[drop]) / 2, 4)
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(group_run, "delay", lambda pk: sent.append(("group_run", pk)))
    monkeypatch.setattr(metric_tasks.group_metrics_ingest, "delay", lambda pk: sent.append(("ingest", pk)))
    monkeypatch.setattr(metric_tasks.step_check_run, "delay", lambda pk: sent.append(("check", pk)))
    campaign = make_exec_campaign(
        data_query=f"{SCIENCE} AND exposure.day_obs = {NIGHT}",
        steps=[
            {"name": "step1", "pipeline_subset": "step1", "quality_gates": ["psf_fwhm max < 5"]},
            {
                "name": "step2",
                "pipeline_subset": "step2",
                "depends_on": ["step1"],
                "metric_input": {"step": "step1", "metric": "psf_fwhm", "op": "<", "threshold": threshold},
            },
        ],
    )
    step2 = campaign.steps.get(name="step2")
    step_split_set(user=owner, step_id=step2.pk, split={"by": "visit", "max_size": 10})
    campaign = campaign_launch(user=owner, campaign_id=campaign.pk)
    step1, step2 = campaign.steps.order_by("position")
    group1 = step1.groups.get()

    with django_capture_on_commit_callbacks(execute=True):
        run_ready_groups(campaign)
    group1.refresh_from_db()
    assert group1.status == GroupStatus.SUCCEEDED and group1.quanta_succeeded == 4
    assert ("ingest", group1.pk) in sent and ("check", step1.pk) in sent

    # The task the executor sent when the group succeeded: 4 bundles of 8 metrics, tied to where they came from.
    first = metric_tasks.group_metrics_ingest(group1.pk)
    assert (first["created"], first["rejected"]) == (32, 0)
    again = metric_tasks.group_metrics_ingest(group1.pk)
    assert (again["created"], again["unchanged"]) == (0, 32)
    values = MetricValue.objects.filter(campaign=campaign)
    assert values.count() == 32
    value = values.get(metric="psfMetrics.psf_fwhm", exposure=keep, detector=0)
    assert (value.step_id, value.group_id, value.run) == (step1.pk, group1.pk, group1.run_collection)
    assert value.dataset_type == "step1_metrics" and len(value.dataset_id) == 36 and value.unit == "arcsec"
    assert (value.visit, value.day_obs) == (keep, NIGHT) and value.band
    assert value.data_id_key == f"instrument=DemoCam,exposure={keep},detector=0"

    step2.refresh_from_db()
    assert step2.status == StepStatus.WAITING  # until step1's checks are done
    with django_capture_on_commit_callbacks(execute=True):
        assert metric_tasks.step_check_run(step1.pk) == "done"
    gate = GateResult.objects.get(step=step1)
    assert gate.passed and gate.count == 4
    freeze = StepInputFreeze.objects.get(step=step2)
    assert (freeze.selected, freeze.rejected) == (1, 1)
    step2.refresh_from_db()
    assert step2.status == StepStatus.READY
    group2 = step2.groups.get()
    assert group2.data_id_table == freeze.table_path and ("group_run", group2.pk) in sent

    with django_capture_on_commit_callbacks(execute=True):
        run_ready_groups(campaign)
    group2.refresh_from_db()
    assert group2.status == GroupStatus.SUCCEEDED
    assert group2.quanta_total == 1  # the where clause names both visits; the frozen table keeps one
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCEEDED
    butler = Butler.from_config(butler_root)
    try:
        visits = {r.dataId["visit"] for r in butler.query_datasets("visitSummary", collections=group2.run_collection)}
    finally:
        butler.close()
    assert visits == {keep}
    # step2's visit-level metrics are ingested too, keyed by visit.
    assert metric_tasks.group_metrics_ingest(group2.pk)["created"] == 7
    visit_value = MetricValue.objects.get(campaign=campaign, metric="visitPsfMetrics.median_psf_fwhm")
    assert visit_value.data_id_key == f"instrument=DemoCam,visit={keep}"
    assert visit_value.value == pytest.approx(psf[keep], abs=1e-3)


def test_the_metrics_of_the_successful_quanta_of_an_accepted_group_are_ingested(
    make_exec_campaign, owner, monkeypatch, django_capture_on_commit_callbacks
):
    """A group with one failing quantum (fault injection) through real BPS + Parsl, accepted as it is: the
    bundles its three successful quanta wrote are ingested, as a succeeded group's would be."""
    from campaigns.execution import group_accept
    from campaigns.tasks import group_run
    from tests.execution.conftest import CLUSTER_BY_EXPOSURE

    fail = (VISITS[1], 1)
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(group_run, "delay", lambda pk: sent.append(("group_run", pk)))
    monkeypatch.setattr(metric_tasks.group_metrics_ingest, "delay", lambda pk: sent.append(("ingest", pk)))
    campaign = make_exec_campaign(
        data_query=f"{SCIENCE} AND exposure.day_obs = {NIGHT}",
        steps=[{"name": "step1", "pipeline_subset": "step1"}],
        bps={
            "compute_site": "local_threads",
            "wms": "parsl",
            "extra": {
                **CLUSTER_BY_EXPOSURE,
                "config_overrides": {"step1": {"failDataIds": [f"exposure:{fail[0]},detector:{fail[1]}"]}},
            },
        },
    )
    campaign = campaign_launch(user=owner, campaign_id=campaign.pk)
    group = campaign.steps.get().groups.get()
    with django_capture_on_commit_callbacks(execute=True):
        run_ready_groups(campaign)
    group.refresh_from_db()
    assert group.status == GroupStatus.FAILED and (group.quanta_succeeded, group.quanta_failed) == (3, 1)
    assert ("ingest", group.pk) not in sent
    with django_capture_on_commit_callbacks(execute=True):
        group_accept(user=owner, group_id=group.pk, comment="one detector is fine to lose")
    assert ("ingest", group.pk) in sent
    report = metric_tasks.group_metrics_ingest(group.pk)
    assert (report["created"], report["rejected"]) == (3 * 8, 0)
    measured = set(
        MetricValue.objects.filter(campaign=campaign, metric="psfMetrics.psf_fwhm").values_list("exposure", "detector")
    )
    assert measured == {(VISITS[0], 0), (VISITS[0], 1), (VISITS[1], 0)}  # not the failed quantum's
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCEEDED
