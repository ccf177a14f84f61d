"""Prometheus gauges of the executor, read from the database at each scrape (see ``core.monitoring``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db.models import Count, Max, Min, Sum
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from .choices import GroupStatus
from .models import Group, Submission, WorkerHeartbeat

# Quanta done per minute is averaged over the attempts that finished in this window.
RATE_WINDOW = timedelta(minutes=10)


def collect() -> Iterable[Metric]:
    now = timezone.now()

    groups = GaugeMetricFamily("cm_groups", "Groups of all campaigns by state.", labels=["state"])
    counts = dict(Group.objects.values_list("status").annotate(n=Count("pk")).order_by())
    for state in GroupStatus.values:
        groups.add_metric([state], counts.get(state, 0))
    yield groups

    oldest = Group.objects.filter(status=GroupStatus.READY).aggregate(at=Min("updated"))["at"]
    yield GaugeMetricFamily(
        "cm_oldest_ready_group_age_seconds",
        "How long the longest-waiting ready group has waited for a worker (0 when none waits).",
        value=(now - oldest).total_seconds() if oldest else 0.0,
    )

    beats = GaugeMetricFamily(
        "cm_worker_heartbeat_age_seconds", "Seconds since each worker last ran the heartbeat task.", labels=["worker"]
    )
    for hostname, seen in WorkerHeartbeat.objects.values_list("hostname", "seen"):
        beats.add_metric([hostname], (now - seen).total_seconds())
    yield beats
    newest = WorkerHeartbeat.objects.aggregate(at=Max("seen"))["at"]
    yield GaugeMetricFamily(
        "cm_last_worker_heartbeat_age_seconds",
        "Seconds since any worker last ran the heartbeat task (NaN when none ever did).",
        value=(now - newest).total_seconds() if newest else float("nan"),
    )

    done = Submission.objects.aggregate(n=Sum("quanta_succeeded"))["n"] or 0
    yield GaugeMetricFamily("cm_quanta_succeeded", "Quanta that succeeded, over every attempt recorded.", value=done)
    recent = Submission.objects.filter(finished__gte=now - RATE_WINDOW).aggregate(n=Sum("quanta_succeeded"))["n"] or 0
    yield GaugeMetricFamily(
        "cm_quanta_done_per_minute",
        f"Quanta succeeded per minute by the attempts that finished in the last {int(RATE_WINDOW.total_seconds() // 60)} minutes.",
        value=recent / (RATE_WINDOW.total_seconds() / 60),
    )
