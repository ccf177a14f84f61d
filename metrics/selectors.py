"""Reads of the metrics app: every one permission-filtered through ``MetricValue.objects.restrict``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Count, QuerySet
from django.http import Http404

from .filtersets import MetricValueFilterSet
from .models import GateResult, MetricValue, StepCheck, StepInputFreeze


def metric_value_list(*, user, filters: Mapping[str, Any] | None = None) -> QuerySet[MetricValue]:
    """Metric values ``user`` may see, filtered (campaign, metric, exposure, visit, detector, band, nights,
    value range); raises ``django.core.exceptions.ValidationError`` for a malformed filter."""
    from django.core.exceptions import ValidationError

    base = MetricValue.objects.restrict(user).select_related("campaign", "step")
    filterset = MetricValueFilterSet(filters or {}, queryset=base)
    if not filterset.is_valid():
        raise ValidationError({k: [str(m) for m in v] for k, v in filterset.errors.items()})
    return filterset.qs.order_by("metric", "data_id_key", "source_key")


def metric_name_list(*, user, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The metric names (with unit and how many values) among the values ``user`` may see."""
    values = metric_value_list(user=user, filters=filters)
    rows = values.order_by().values("metric", "unit").annotate(count=Count("id")).order_by("metric", "unit")
    return [dict(row) for row in rows]


def campaign_metric_summary(*, user, campaign) -> dict[str, Any]:
    """What the campaign page shows about metrics: counts, gate results and frozen inputs per step.

    ``campaign`` was fetched through ``access_campaign``, so ``user`` may view it."""
    steps = list(campaign.steps.order_by("position"))
    checks = {c.step_id: c for c in StepCheck.objects.filter(step__in=steps)}
    gates: dict[int, list[GateResult]] = {}
    for result in GateResult.objects.filter(step__in=steps).order_by("step", "position"):
        gates.setdefault(result.step_id, []).append(result)
    freezes = {
        f.step_id: f for f in StepInputFreeze.objects.filter(step__in=steps).select_related("version__dataid_set")
    }
    names = list(
        MetricValue.objects.filter(campaign=campaign)
        .order_by()
        .values("metric", "unit")
        .annotate(count=Count("id"))
        .order_by("metric")
    )
    return {
        "names": names,
        "total": sum(n["count"] for n in names),
        "steps": [
            {
                "step": step,
                "gates": step.quality_gates,
                "metric_input": step.metric_input,
                "check": checks.get(step.pk),
                "results": gates.get(step.pk, []),
                "freeze": freezes.get(step.pk),
            }
            for step in steps
            if step.quality_gates or step.metric_input or step.pk in checks
        ],
    }


def campaign_for_metrics(*, user, campaign: str | int):
    """A campaign the user may view, by id or name (404 otherwise)."""
    from campaigns.models import Campaign

    visible = Campaign.objects.restrict(user, "view").select_related("butler_repo")
    text = str(campaign).strip()
    found = visible.filter(pk=int(text)).first() if text.isdigit() else visible.filter(name=text).first()
    if found is None:
        raise Http404("No such campaign.")
    return found
