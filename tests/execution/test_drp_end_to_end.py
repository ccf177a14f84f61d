"""A DRP-shaped campaign through real BPS + Parsl and pipetask: the four steps of the demo pipeline, step3
and step4 cut by tract of the demo skymap (the registry's spatial join).

Data: night 1's exposures 150 (u) and 151 (g) of DEEP-A, detectors 1 (west column) and 4 (centre), so the
data reach tracts 0 (west) and 1 (east) of demo_sky_v1, two patches each. step1 is cut by exposure (two
groups); a fault injected for exposure 151 detector 4 fails one quantum of the second group, which is
isolated: the first succeeds. A person accepts the failed group and approves step2 (which needs approval),
both through the API; steps 2 to 4 run, the fault injection (configured for step1 only) staying in the
campaign's settings throughout. Outputs land in the Butler, metric bundles in the database (per detector,
per visit, per tract x patch x band, per tract). Tasks are called in this process, in the order the
executor sends them (no broker). 4 + 2 + 8 + 2 = 16 quanta in 7 BPS submissions.
"""

from __future__ import annotations

import time

import pytest

from campaigns.choices import CampaignStatus, GroupStatus, StepStatus
from campaigns.execution import campaign_launch
from campaigns.execution.plan import campaign_plan
from campaigns.models import Group, QuantumError, Step
from metrics import tasks as metric_tasks
from metrics.models import MetricValue
from tests.execution.conftest import run_ready_groups

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

SKYMAP = "demo_sky_v1"
QUERY = (
    "exposure.observation_type = 'science' AND exposure.day_obs = 20251121 AND exposure.seq_num IN (150, 151)"
    " AND detector IN (1, 4)"
)
U, G = 2025112100150, 2025112100151
FAIL = (G, 4)
# One BPS job per group in every step (fewer pipetask process starts).
CLUSTERS = {
    "clusterAlgorithm": "lsst.ctrl.bps.quantum_clustering_funcs.dimension_clustering",
    "cluster": {
        "step1": {"pipetasks": "step1", "dimensions": "exposure"},
        "step2": {"pipetasks": "step2", "dimensions": "instrument"},
        "step3": {"pipetasks": "step3", "dimensions": "tract"},
    },
}
STEPS = [
    {"name": "step1", "pipeline_subset": "step1", "split": {"by": "exposure", "max_size": 1}},
    {"name": "step2", "pipeline_subset": "step2", "depends_on": ["step1"], "requires_approval": True,
     "split": {"by": "visit", "max_size": 10}},
    {"name": "step3", "pipeline_subset": "step3", "depends_on": ["step2"], "split": {"by": "tract", "skymap": SKYMAP}},
    {"name": "step4", "pipeline_subset": "step4", "depends_on": ["step3"], "split": {"by": "tract", "skymap": SKYMAP}},
]  # fmt: skip
TIMINGS: dict[str, float] = {}


def groups_of(step: Step) -> dict[str, Group]:
    return {g.name: g for g in Group.objects.filter(step=step).order_by("position")}


def test_a_four_step_drp_cut_by_tract_runs_through_bps_with_a_failure_accepted_and_an_approval(
    make_exec_campaign, owner, api, butler_root, monkeypatch, django_capture_on_commit_callbacks
):
    from lsst.daf.butler import Butler

    from campaigns.tasks import group_run

    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(group_run, "delay", lambda pk: sent.append(("group_run", pk)))
    monkeypatch.setattr(metric_tasks.group_metrics_ingest, "delay", lambda pk: sent.append(("ingest", pk)))
    monkeypatch.setattr(metric_tasks.step_check_run, "delay", lambda pk: sent.append(("check", pk)))

    def work(label: str, campaign) -> list[str]:
        """Run the ready groups, then what their ends sent: metric ingest and the finished steps' checks."""
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            results = run_ready_groups(campaign)
        TIMINGS[label] = time.monotonic() - started
        drain(sent, django_capture_on_commit_callbacks)
        return results

    fault = {"step1": {"failDataIds": [f"exposure:{FAIL[0]},detector:{FAIL[1]}"]}}
    campaign = make_exec_campaign(
        data_query=QUERY,
        steps=STEPS,
        bps={"compute_site": "local_threads", "wms": "parsl", "extra": {**CLUSTERS, "config_overrides": fault}},
    )
    started = time.monotonic()
    campaign = campaign_launch(user=owner, campaign_id=campaign.pk)
    TIMINGS["launch"] = time.monotonic() - started
    step1, step2, step3, step4 = campaign.steps.order_by("position")
    assert list(groups_of(step1)) == ["exposures-001", "exposures-002"]
    assert list(groups_of(step2)) == ["visits-001"]
    assert list(groups_of(step3)) == ["tract-0", "tract-1"]  # the tracts the two detectors overlap
    assert groups_of(step3)["tract-1"].where.endswith(f"(skymap = '{SKYMAP}' AND tract = 1)")
    assert list(groups_of(step4)) == ["tract-0", "tract-1"]

    # step1: the fault fails one quantum of the second group; the first is not touched by it.
    work("step1", campaign)
    good, bad = groups_of(step1).values()
    assert (good.status, good.quanta_succeeded) == (GroupStatus.SUCCEEDED, 2)
    assert (bad.status, bad.quanta_total, bad.quanta_failed) == (GroupStatus.FAILED, 2, 1)
    (error,) = QuantumError.objects.filter(submission__group=bad)
    assert error.data_id == {"instrument": "DemoCam", "exposure": FAIL[0], "detector": FAIL[1]}
    step2.refresh_from_db()
    assert step2.status == StepStatus.WAITING

    # A person accepts the failed group and approves step2, through the API.
    client = api(owner)
    accepted = client.post(f"/api/v1/groups/{bad.pk}/accept/", {"comment": "one detector lost; enough"}, format="json")
    assert accepted.status_code == 202 and accepted.json()["status"] == GroupStatus.ACCEPTED
    drain(sent, django_capture_on_commit_callbacks)
    step2.refresh_from_db()
    assert step2.status == StepStatus.AWAITING_APPROVAL
    assert work("before approval", campaign) == []  # nothing runs before it
    approved = client.post(f"/api/v1/steps/{step2.pk}/approve/", {"comment": "step1 looks fine"}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == StepStatus.READY

    work("step2", campaign)
    (visits,) = groups_of(step2).values()
    assert (visits.status, visits.quanta_succeeded) == (GroupStatus.SUCCEEDED, 2)
    work("step3", campaign)
    assert {n: (g.status, g.quanta_succeeded) for n, g in groups_of(step3).items()} == {
        "tract-0": (GroupStatus.SUCCEEDED, 4),
        "tract-1": (GroupStatus.SUCCEEDED, 4),
    }
    work("step4", campaign)
    assert {n: (g.status, g.quanta_succeeded) for n, g in groups_of(step4).items()} == {
        "tract-0": (GroupStatus.SUCCEEDED, 1),
        "tract-1": (GroupStatus.SUCCEEDED, 1),
    }
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCEEDED

    # Outputs in the Butler, through the campaign's CHAINED collection.
    butler = Butler.from_config(butler_root)
    try:
        coadds = butler.query_datasets("coaddSummary", collections=campaign.output_collection)
        keys = {(r.dataId["tract"], r.dataId["patch"], r.dataId["band"]) for r in coadds}
        assert keys == {(t, p, b) for t, ps in ((0, (1, 3)), (1, (0, 2))) for p in ps for b in ("u", "g")}
        summary = butler.get(
            "coaddSummary", collections=campaign.output_collection, skymap=SKYMAP, tract=1, patch=0, band="g"
        )
        assert summary["visits"] == [G] and summary["n_visits"] == 1 and summary["coadd_depth"] > 20
        tracts = butler.query_datasets("tractSummary", collections=campaign.output_collection)
        assert {r.dataId["tract"] for r in tracts} == {0, 1}
        tract0 = butler.get("tractSummary", collections=campaign.output_collection, skymap=SKYMAP, tract=0)
        assert (tract0["n_patches"], tract0["bands"]) == (2, ["g", "u"])
        visit = butler.get("visitSummary", collections=campaign.output_collection, instrument="DemoCam", visit=G)
        assert visit["detectors"] == [1]  # the failed detector's summary is missing: the group was accepted
    finally:
        butler.close()

    # Metrics in the database, keyed as their bundles' data IDs are.
    values = MetricValue.objects.filter(campaign=campaign)
    per_step = {
        s: values.filter(step=step).count() for s, step in zip(("1", "2", "3", "4"), (step1, step2, step3, step4))
    }
    assert per_step["1"] >= 16 and per_step["2"] == 14  # 2 quanta x 8 metrics (at least), 2 visits x 7 metrics
    assert per_step["3"] == 8 * 4 and per_step["4"] == 2 * 4  # 8 coadds x 4 metrics, 2 tracts x 4 metrics
    depth = values.get(metric="coaddDepthMetrics.coadd_depth", tract=1, patch=0, band="g")
    assert (depth.exposure, depth.visit, depth.skymap, depth.unit) == (None, None, SKYMAP, "mag")
    assert depth.data_id_key == f"instrument=DemoCam,band=g,skymap={SKYMAP},tract=1,patch=0"
    assert depth.group_id == groups_of(step3)["tract-1"].pk and depth.value == pytest.approx(summary["coadd_depth"])
    tract_value = values.get(metric="tractCoverageMetrics.tract_n_patches", tract=0)
    assert tract_value.value == 2 and tract_value.data_id_key == f"instrument=DemoCam,skymap={SKYMAP},tract=0"

    # The plan now tells what ran next to each group's own estimate.
    plan = campaign_plan(user=owner, campaign_id=campaign.pk)
    ran = {s.step.name: {g.name: (g.quanta, g.ran["per_task"]) for g in s.groups} for s in plan.steps}
    assert ran["step3"]["tract-0"] == ({"step3": 4}, {"step3": 4})
    assert ran["step1"]["exposures-002"] == ({"step1": 2}, {"step1": 1})  # the accepted group: one ran to the end
    assert plan.steps[0].groups[1].ran["failed_per_task"] == {"step1": 1}
    total = sum(TIMINGS.values())
    print("\nDRP e2e timings (s): " + ", ".join(f"{k}={v:.1f}" for k, v in TIMINGS.items()) + f"; total={total:.1f}")


def drain(sent: list[tuple[str, int]], capture) -> None:
    """Run the metric ingests and step checks the executor sent, in order, until none is left (a worker's job)."""
    while True:
        pending = [item for item in sent if item[0] in ("ingest", "check")]
        if not pending:
            return
        for item in pending:
            sent.remove(item)
        for kind, pk in pending:
            with capture(execute=True):  # a check frees the next step: its groups become ready and are sent
                if kind == "ingest":
                    metric_tasks.group_metrics_ingest(pk)
                else:
                    metric_tasks.step_check_run(pk)
