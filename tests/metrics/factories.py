"""Row factories for the dashboard tests (bulk_create, no service).

The dashboards read metric values; how values get in is tested on its own (tests/metrics/test_ingest.py,
and test_end_to_end.py after a real BPS run). Here values are plain rows with exactly the numbers a test
needs, written in bulk like the benchmark's million. Exposure/detector mirror rows and execution records
(groups, transitions, submissions, failed quanta) are plain rows too: the real services that write them
need a running Butler/BPS, which tests/execution covers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from campaigns.models import Campaign, Group, GroupTransition, QuantumError, Submission
from metrics import rollups
from metrics.models import MetricValue
from tagging.models import ButlerRepo, Detector, Exposure

INSTRUMENT = "DemoCam"
DETECTOR_NAMES = tuple(f"R22_S{x}{y}" for x in range(3) for y in range(3))
NIGHTS = (20251121, 20251122)
START = datetime(2025, 11, 22, 1, 0, tzinfo=UTC)


def exposure_id(day_obs: int, seq: int) -> int:
    return day_obs * 100_000 + seq


def mirror_rows(repo: ButlerRepo, *, per_night: int = 4) -> list[Exposure]:
    """Exposures (science, with time and pointing) and the 9 detectors R22_S00..R22_S22 in the mirror."""
    Detector.objects.bulk_create(
        Detector(repo=repo, instrument=INSTRUMENT, detector_id=i, full_name=name, raft="R22", purpose="SCIENCE")
        for i, name in enumerate(DETECTOR_NAMES)
    )
    exposures = []
    for n, night in enumerate(NIGHTS):
        for seq in range(1, per_night + 1):
            begin = START + timedelta(days=n, minutes=2 * seq)
            exposures.append(
                Exposure(
                    repo=repo,
                    instrument=INSTRUMENT,
                    exposure_id=exposure_id(night, seq),
                    obs_id=f"DC_O_{night}_{seq:06d}",
                    day_obs=night,
                    seq_num=seq,
                    physical_filter="DemoCam-r" if seq % 2 else "DemoCam-g",
                    band="r" if seq % 2 else "g",
                    observation_type="science",
                    target_name="field-A",
                    ra=10.0 + seq,
                    dec=-30.0 + n,
                    begin=begin,
                    end=begin + timedelta(seconds=30),
                )
            )
    return Exposure.objects.bulk_create(exposures)


def metric_values(
    campaign: Campaign,
    metric: str,
    values: dict[tuple[int, int], float | None],
    *,
    unit: str = "arcsec",
    step=None,
    group=None,
    exposures: dict[int, Exposure] | None = None,
) -> list[MetricValue]:
    """One MetricValue per ((exposure, detector) -> value); day_obs and band from the mirror rows if given."""
    run = f"{campaign.name}/run1"
    rows = []
    for (exposure, detector), value in values.items():
        mirror = (exposures or {}).get(exposure)
        rows.append(
            MetricValue(
                metric=metric,
                value=value,
                unit=unit,
                data_id_key=f"instrument={INSTRUMENT},exposure={exposure},detector={detector}",
                instrument=INSTRUMENT,
                exposure=exposure,
                detector=detector,
                day_obs=mirror.day_obs if mirror else exposure // 100_000,
                band=mirror.band if mirror else None,
                campaign=campaign,
                step=step,
                group=group,
                run=run,
                source_key=run,
            )
        )
    created = MetricValue.objects.bulk_create(rows)
    rollups.refresh(campaign.pk, metric)  # as the ingest does when it stores values
    return created


def execution_rows(campaign: Campaign, *, user) -> dict[str, Any]:
    """Groups in several states with their transitions, submissions and failed quanta (one matched by a rule)."""
    from campaigns.models import ErrorRule

    step = campaign.steps.order_by("position").first()
    assert step is not None
    t0 = START
    groups = Group.objects.bulk_create(
        Group(step=step, name=f"night-{i}", position=i, status=status)
        for i, status in enumerate(["succeeded", "succeeded", "failed", "running", "waiting"])
    )
    transitions = []
    submissions = []
    for i, g in enumerate(groups):
        if g.status == "waiting":
            continue
        transitions.append(GroupTransition(group=g, from_status="submitting", to_status="running"))
        if g.status in ("succeeded", "failed"):
            transitions.append(GroupTransition(group=g, from_status="running", to_status=g.status))
        submissions.append(
            Submission(
                group=g,
                number=1,
                state=g.status if g.status != "running" else "running",
                run_collection=f"{campaign.name}/{g.name}/run1",
                started=t0 + timedelta(minutes=i),
                finished=t0 + timedelta(minutes=i + 10 * (i + 1)) if g.status in ("succeeded", "failed") else None,
            )
        )
    made = GroupTransition.objects.bulk_create(transitions)
    # ``at`` is auto_now_add: spread the times as a real run would have them.
    for k, tr in enumerate(made):
        GroupTransition.objects.filter(pk=tr.pk).update(at=t0 + timedelta(minutes=5 * k))
    subs = Submission.objects.bulk_create(submissions)
    rule = ErrorRule.objects.create(task_label="isr", message_regex="timeout", action="auto-retry", created_by=user)
    failed_sub = next(s for s in subs if s.group.status == "failed")
    QuantumError.objects.bulk_create(
        [
            QuantumError(submission=failed_sub, task_label="isr", message="timeout", rule=rule, action="auto-retry"),
            QuantumError(submission=failed_sub, task_label="isr", message="timeout", rule=rule, action="auto-retry"),
            QuantumError(submission=failed_sub, task_label="calibrate", message="no stars", data_id={"exposure": 1}),
        ]
    )
    return {"step": step, "groups": groups, "rule": rule}
