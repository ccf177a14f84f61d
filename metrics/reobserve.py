"""Re-observation requests: the exposures of a campaign whose metric fails a condition, in the shape the
observatory's scheduling tools read (target, band, ra/dec, night, obs_id, reason, source campaign)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from django.core.exceptions import ValidationError

from .conditions import OPERATORS, check_statistic, passes

FIELDS = (
    "target", "band", "ra", "dec", "day_obs", "obs_id", "exposure", "physical_filter", "metric", "statistic",
    "measured", "reason", "source_campaign",
)  # fmt: skip


def clean_request(params: Mapping[str, Any]) -> dict[str, Any]:
    """The condition of a re-observation request: metric, op, threshold (required), statistic (default median),
    band and night range (optional). Raises ``ValidationError`` naming the parameter."""
    errors: dict[str, str] = {}
    metric = str(params.get("metric") or "").strip()
    if not metric:
        errors["metric"] = "Which metric decides, e.g. psf_fwhm."
    op = str(params.get("op") or "").strip()
    if op not in OPERATORS:
        errors["op"] = f"One of {', '.join(OPERATORS)}: the exposures for which 'metric op threshold' are re-observed."
    threshold: float | None = None
    try:
        threshold = float(str(params.get("threshold", "")).strip())
    except ValueError:
        errors["threshold"] = f"Must be a number, got {params.get('threshold')!r}."
    else:
        if not math.isfinite(threshold):
            errors["threshold"] = f"Must be a finite number, got {params.get('threshold')!r}."
    statistic = str(params.get("statistic") or "median").strip()
    problem = check_statistic(statistic)
    if problem:
        errors["statistic"] = problem
    out: dict[str, Any] = {"metric": metric, "op": op, "threshold": threshold, "statistic": statistic}
    band = str(params.get("band") or "").strip()
    out["band"] = band
    for key in ("day_obs_min", "day_obs_max"):
        raw = str(params.get(key) or "").strip()
        out[key] = None
        if raw:
            if not raw.isdigit() or len(raw) != 8:
                errors[key] = f"A night as YYYYMMDD, got {raw!r}."
            else:
                out[key] = int(raw)
    if errors:
        raise ValidationError(errors)
    return out


def reobservation_rows(*, campaign, request: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """One row per exposure of ``campaign`` whose metric statistic (over its detectors) satisfies the condition.

    ``campaign`` comes from a permission-checked selector; the values are the campaign's own."""
    from tagging.models import Exposure

    from .models import MetricValue
    from .services import _aggregate, metric_filter

    values = MetricValue.objects.filter(
        metric_filter(request["metric"]), campaign=campaign, value__isnull=False, exposure__isnull=False
    )
    if request["band"]:
        values = values.filter(band=request["band"])
    if request["day_obs_min"] is not None:
        values = values.filter(day_obs__gte=request["day_obs_min"])
    if request["day_obs_max"] is not None:
        values = values.filter(day_obs__lte=request["day_obs_max"])
    per_exposure = (
        values.order_by().values("exposure").annotate(measured=_aggregate(request["statistic"])).order_by("exposure")
    )
    failing = [
        (row["exposure"], row["measured"])
        for row in per_exposure
        if passes(row["measured"], request["op"], request["threshold"])
    ]
    fields = ("exposure_id", "obs_id", "target_name", "band", "physical_filter", "ra", "dec", "day_obs")
    for start in range(0, len(failing), 2000):
        chunk = failing[start : start + 2000]
        mirror = {
            e["exposure_id"]: e
            for e in Exposure.objects.filter(
                repo_id=campaign.butler_repo.pk, exposure_id__in=[c[0] for c in chunk]
            ).values(*fields)
        }
        for exposure, measured in chunk:
            e = mirror.get(exposure, {})
            condition = f"{request['metric']} {request['statistic']} {request['op']} {request['threshold']:g}"
            yield {
                "target": e.get("target_name", ""),
                "band": e.get("band", ""),
                "ra": e.get("ra"),
                "dec": e.get("dec"),
                "day_obs": e.get("day_obs"),
                "obs_id": e.get("obs_id", ""),
                "exposure": exposure,
                "physical_filter": e.get("physical_filter", ""),
                "metric": request["metric"],
                "statistic": request["statistic"],
                "measured": round(measured, 6),
                "reason": f"{condition}: measured {measured:.4g} in campaign {campaign.name}",
                "source_campaign": campaign.name,
            }


def as_json(rows: list[dict[str, Any]], *, campaign, request: Mapping[str, Any]) -> str:
    return json.dumps(
        {
            "source_campaign": campaign.name,
            "condition": {k: request[k] for k in ("metric", "statistic", "op", "threshold", "band")},
            "count": len(rows),
            "requests": rows,
        },
        indent=1,
    )


def as_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue()
