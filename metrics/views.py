"""Pages of the metrics app: campaign overview, metric explorer, campaign A against B, and the loop back.

Thin views: selectors aggregate in SQL (and apply permissions), ``charts`` turns the result into
Plotly figure specs, the template embeds them as JSON and static/js/metrics.js draws them.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from campaigns.selectors import access_campaign
from core.errors import InputError
from core.roles import is_staff_member

from . import charts, selectors, services
from .forms import MetricFilterForm, ThresholdSelectionForm

_JSON_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}
FILTER_KEYS = ("metric", "band", "night_from", "night_to", "step", "detector", "value_min", "value_max", "x")


def figures_json(figures: dict[str, Any]) -> SafeString:
    """The figures as compact JSON, safe inside a <script type="application/json"> element."""
    text = json.dumps(figures, separators=(",", ":"), allow_nan=False)
    # str.replace runs in C: str.translate with a mapping took 0.25 s on the 3 MB of a two-campaign explorer.
    for char, escaped in _JSON_ESCAPES.items():
        text = text.replace(chr(char), escaped)
    return mark_safe(text)  # noqa: S308


def exposure_url_template() -> str:
    """The exposure page URL with ``{repo}`` and ``{exposure}`` placeholders (filled in by charts)."""
    return reverse("tagging:exposure", args=["REPO", 0]).replace("REPO", "{repo}").replace("/0/", "/{exposure}/")


def _campaign_ids(values: list[str]) -> list[int]:
    try:
        return [int(v) for v in values if str(v).strip()]
    except ValueError:
        raise Http404("No such campaign.") from None


def _filters(request: HttpRequest, form: MetricFilterForm) -> dict[str, Any]:
    if form.is_valid():
        return form.cleaned_data
    for field, errors in form.errors.items():
        for error in errors:
            messages.error(request, f"{form.fields[field].label or field if field in form.fields else field}: {error}")
    return {k: v for k, v in form.cleaned_data.items() if k not in form.errors}


def _query(campaigns, metric: str, data: dict[str, Any]) -> selectors.MetricQuery:
    return selectors.MetricQuery(
        campaigns=campaigns,
        metric=metric,
        band=data.get("band") or None,
        night_from=data.get("night_from"),
        night_to=data.get("night_to"),
        step=data.get("step") or None,
        detector=data.get("detector"),
        value_min=data.get("value_min"),
        value_max=data.get("value_max"),
    )


def _step_names(campaigns) -> list[str]:
    from campaigns.models import Step

    return list(Step.objects.filter(campaign__in=campaigns).values_list("name", flat=True).distinct().order_by("name"))


def campaign_overview(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = access_campaign(request.user, pk, "view")
    overview = selectors.campaign_overview(campaign=campaign)
    figures = {
        "progress": charts.progress_figure(overview.progress, total=overview.total_groups),
        "states": charts.state_bar_figure(overview.states),
        "by_task": charts.count_bar_figure(
            overview.failures_by_task, title="Failures by task", empty="No failed quantum recorded."
        ),
        "by_rule": charts.count_bar_figure(
            overview.failures_by_rule,
            title="Failures by error rule",
            empty="No failed quantum recorded.",
            colour="#b7791f",
        ),
        "run_times": charts.run_time_figure(overview.run_times),
    }
    return render(
        request,
        "metrics/overview.html",
        {"campaign": campaign, "overview": overview, "figures": figures_json(figures), "active": "campaigns"},
    )


def explorer(request: HttpRequest) -> HttpResponse:
    campaigns = selectors.dashboard_campaigns(user=request.user, ids=_campaign_ids(request.GET.getlist("campaign")))
    form = MetricFilterForm(request.GET or None)
    data = _filters(request, form) if request.GET else {}
    context: dict[str, Any] = {
        "campaigns": campaigns,
        "choices": selectors.explorer_campaign_choices(user=request.user),
        "form": form,
        "active": "metrics",
    }
    if not campaigns:
        return render(request, "metrics/explorer.html", context)
    metrics = selectors.campaign_metric_names(campaign_ids=[c.pk for c in campaigns])
    units = dict(metrics)
    metric = data.get("metric") or ""
    if metric and metric not in units:
        messages.error(request, f"The chosen campaigns have no metric {metric!r}.")
        metric = ""
    metric, reason = _explorer_metric(request, campaigns, metric, units)
    context.update(
        {
            "metrics": metrics,
            "metric": metric,
            "metric_reason": reason,
            "steps": _step_names(campaigns),
            "filters": _filter_query(data),
        }
    )
    if not metric:
        return render(request, "metrics/explorer.html", context)
    query = _query(campaigns, metric, data)
    unit = units.get(metric, "")
    url = exposure_url_template()
    x_axis = data.get("x") or "time"

    def build() -> dict[str, Any]:
        # Aggregates, figures and their JSON, cached together: a repeated view only checks permissions.
        found = selectors.metric_explorer_data(query=query, use_cache=False)
        figures = {
            "histogram": charts.histogram_figure(found.histogram, metric=metric, unit=unit),
            "time": charts.time_figure(found.points, metric=metric, unit=unit, url_template=url, x=x_axis),
            "sky": charts.sky_figure(found.points, metric=metric, unit=unit, url_template=url),
        }
        for campaign in campaigns[:4]:
            figures[f"focal-{campaign.pk}"] = charts.focal_plane_figure(
                found.detectors.get(campaign.pk, []),
                metric=metric,
                unit=unit,
                title=f"{campaign.name}: mean per detector",
            )
        return {
            "figures": figures_json(figures),
            "value_count": sum(sum(s.counts) for s in found.histogram),
            "null_count": sum(s.nulls for s in found.histogram),
            "exposure_total": found.exposure_total,
            "points_shown": len(found.points),
        }

    context.update(selectors.cached("explorer-page", query, build, x=x_axis, url=url))
    context.update(
        {
            "query": query,
            "unit": unit,
            "focal_ids": [f"focal-{c.pk}" for c in campaigns[:4]],
            "selection_form": ThresholdSelectionForm(initial={"campaign": campaigns[0].pk, "operator": "gt"})
            if is_staff_member(request.user)
            else None,
        }
    )
    return render(request, "metrics/explorer.html", context)


EXPLORER_METRIC = "metrics.explorer.metric"


def _explorer_metric(request: HttpRequest, campaigns, chosen: str, units: dict[str, str]) -> tuple[str, str]:
    """(metric to show, why it was chosen for the person: "" when they chose it). A chosen metric is remembered
    in the session; without one the explorer opens on the remembered metric if these campaigns measured it, else
    on the metric with the most values (the campaign's main QA measurement rather than the alphabetically first,
    often a rarely filled diagnostic)."""
    if chosen:
        if request.session.get(EXPLORER_METRIC) != chosen:
            request.session[EXPLORER_METRIC] = chosen
        return chosen, ""
    remembered = request.session.get(EXPLORER_METRIC)
    if remembered in units:
        return remembered, "the metric you looked at last"
    most = selectors.most_measured_metric(campaign_ids=[c.pk for c in campaigns])
    if most is None or most[0] not in units:
        first = next(iter(units), "")
        return first, "the first metric of these campaigns" if first else ""
    where = "this campaign" if len(campaigns) == 1 else "these campaigns"
    return most[0], f"the metric with the most values in {where} ({most[1]:,})"


def _filter_query(data: dict[str, Any]) -> str:
    return urlencode({k: v for k, v in data.items() if k in FILTER_KEYS and v not in (None, "")})


def compare(request: HttpRequest) -> HttpResponse:
    ids = _campaign_ids([request.GET.get("a", ""), request.GET.get("b", "")])
    context: dict[str, Any] = {"choices": selectors.explorer_campaign_choices(user=request.user), "active": "metrics"}
    form = MetricFilterForm(request.GET or None)
    data = _filters(request, form) if request.GET else {}
    context["form"] = form
    if len(ids) != 2:
        return render(request, "metrics/compare.html", context)
    campaigns = selectors.dashboard_campaigns(user=request.user, ids=ids)
    if len(campaigns) != 2:
        messages.error(request, "Choose two different campaigns.")
        return render(request, "metrics/compare.html", context)
    a, b = campaigns
    metrics = selectors.campaign_metric_names(campaign_ids=ids)
    units = dict(metrics)
    metric = data.get("metric") or ""
    if metric and metric not in units:
        messages.error(request, f"Neither campaign has a metric {metric!r}.")
        metric = ""
    metric, reason = _explorer_metric(request, campaigns, metric, units)
    context.update(
        {
            "a": a,
            "b": b,
            "metrics": metrics,
            "metric": metric,
            "metric_reason": reason,
            "steps": _step_names(campaigns),
        }
    )
    if not metric:
        return render(request, "metrics/compare.html", context)
    query = _query(campaigns, metric, data)
    unit = units.get(metric, "")

    def build() -> dict[str, Any]:
        comparison = selectors.metric_comparison(query=query, use_cache=False)
        figures = {
            "scatter": charts.comparison_scatter_figure(
                comparison.pairs, metric=metric, unit=unit, label_a=a.name, label_b=b.name, url_template=url
            ),
            "differences": charts.difference_histogram_figure(comparison.differences, metric=metric, unit=unit),
        }
        largest = [
            {"pair": p, "url": charts.exposure_url(url, p.repo, p.exposure) if p.exposure is not None else ""}
            for p in comparison.largest
        ]
        drawn = len(comparison.pairs)
        comparison.pairs = []  # in the figure already: not kept twice in the cache
        return {"comparison": comparison, "figures": figures_json(figures), "largest": largest, "drawn": drawn}

    url = exposure_url_template()
    context.update(selectors.cached("compare-page", query, build, url=url))
    context.update({"unit": unit, "query": query})
    return render(request, "metrics/compare.html", context)


@require_POST
def threshold_select(request: HttpRequest) -> HttpResponse:
    if not is_staff_member(request.user):
        raise PermissionDenied("Only staff members can create DataID sets.")
    campaigns = selectors.dashboard_campaigns(user=request.user, ids=_campaign_ids(request.POST.getlist("campaigns")))
    form = ThresholdSelectionForm(request.POST)
    back = (
        reverse("metrics:explorer")
        + "?"
        + urlencode(
            [("campaign", c.pk) for c in campaigns]
            + [(k, request.POST[k]) for k in FILTER_KEYS if request.POST.get(k, "").strip()]
        )
    )
    if not campaigns or not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"Not selected: {field}: {' '.join(str(e) for e in errors)}")
        return redirect(back + "#select")
    data = form.cleaned_data
    chosen = [c for c in campaigns if c.pk == data["campaign"]]
    if not chosen:
        raise Http404("No such campaign.")
    as_table = data.get("store_as") == "reject_table"
    arguments = {
        "user": request.user,
        "query": _query(campaigns, data["metric"], data),
        "campaign": chosen[0],
        "operator": data["operator"],
        "threshold": data["threshold"],
        "name": data["name"],
        "reason": data["reason"],
        "whole_exposures": data["whole_exposures"],
        "statistic": data.get("statistic") or "",
    }
    try:
        if as_table:
            table = services.metric_selection_reject_table(**arguments)
        else:
            version = services.metric_selection_create(**arguments)
    except InputError as exc:
        detail = "; ".join(f"{p.get('where')}: {p.get('message')}" for p in exc.problems[:3])
        messages.error(request, f"Not selected: {exc.message}" + (f" ({detail})" if detail else ""))
        return redirect(back + "#select")
    except ValidationError as exc:
        messages.error(request, "Not selected: " + "; ".join(" ".join(v) for v in exc.message_dict.values()))
        return redirect(back + "#select")
    if as_table:
        messages.success(
            request,
            f"{table.row_count:,} data IDs stored in the reject tag table {table.name}: exclude it in the selection "
            "builder (a tag-table term) for the next campaign.",
        )
        return redirect("tagging:tagtable", pk=table.pk)
    messages.success(
        request,
        f"{version.count:,} data IDs stored as {version.dataid_set.name} v{version.number}: use it as the next "
        "campaign's include or exclude list.",
    )
    return redirect("tagging:set", pk=version.dataid_set_id)
