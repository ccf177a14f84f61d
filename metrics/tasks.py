"""Celery tasks of the metrics app. Each takes ids only and calls a service; each is safe to run twice."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="metrics.tasks.group_metrics_ingest", ignore_result=True, acks_late=True)
def group_metrics_ingest(group_id: int) -> dict:
    """Ingest the metric bundles a succeeded (or accepted) group wrote. Safe to run twice: values are upserted."""
    from .services import metrics_ingest_group

    report = metrics_ingest_group(group_id=group_id)
    return {k: v for k, v in report.as_dict().items() if k != "problems"}


@shared_task(name="metrics.tasks.step_check_run", ignore_result=True, acks_late=True)
def step_check_run(step_id: int) -> str:
    """Evaluate a finished step's quality gates and freeze the metric-conditioned inputs that read it.
    Safe to run twice: the check is claimed with a conditional update."""
    from .services import step_check_run as run

    check = run(step_id=step_id)
    return "not claimed" if check is None else check.state
