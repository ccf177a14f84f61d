"""Client methods for QA metrics (``Client`` inherits them)::

cm.ingest_metrics("bundle.json", repo="demo", source="nightly-qa", data_id={"exposure": 2025112100150, "detector": 4})
cm.ingest_metrics("records.jsonl", campaign="w48-minidrp", run="u/alice/w48-minidrp/step1/night-20251121/attempt1")
cm.metric_values(campaign="w48-minidrp", metric="psf_fwhm", band="r")
cm.metric_names(campaign="w48-minidrp")
text = cm.reobservation("w48-minidrp", metric="psf_fwhm", op=">", threshold=1.2, format="csv")
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def api(client: Any) -> Any:
    """The mixed-in client (its ``_json``, ``_request`` and ``_paginated`` come from ``Client``)."""
    return client


class MetricsMixin:
    """Metric ingest and reads; mixed into :class:`cmclient.Client` (which supplies ``_json`` etc.)."""

    def ingest_metrics(
        self,
        path: str | Path,
        *,
        repo: str = "",
        campaign: str | int = "",
        run: str = "",
        source: str = "",
        data_id: Mapping[str, Any] | None = None,
        format: str = "",
        action: str = "",
        units: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Upload a metric file (a bundle JSON, a JSON list or JSON lines of flat records); returns the report
        (read, stored, created, updated, unchanged, rejected and the first problems)."""
        import json

        fields = {
            "repo": repo,
            "campaign": str(campaign or ""),
            "run": run,
            "source": source,
            "format": format,
            "action": action,
        }
        if data_id:
            fields["data_id"] = ",".join(f"{k}={v}" for k, v in data_id.items())
        if units:
            fields["units"] = json.dumps(dict(units))
        path = Path(path)
        with path.open("rb") as handle:
            return api(self)._json("POST", "metrics/ingest/", data=fields, files={"file": (path.name, handle)})

    def metric_values(self, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Metric values you may see; filters: campaign, step, metric, source, run, exposure, visit, detector,
        band, day_obs_min, day_obs_max, value_min, value_max."""
        params = {k: v for k, v in filters.items() if v not in (None, "")}
        return api(self)._paginated("metrics/values/", params=params, limit=limit)

    def metric_names(self, **filters: Any) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v not in (None, "")}
        return api(self)._json("GET", "metrics/names/", params=params)

    def reobservation(
        self,
        campaign: str | int,
        *,
        metric: str,
        op: str,
        threshold: float,
        statistic: str = "median",
        band: str = "",
        day_obs_min: int | None = None,
        day_obs_max: int | None = None,
        format: str = "json",
    ) -> str:
        """The re-observation request (JSON or CSV text) for the exposures whose metric satisfies the condition."""
        params = {
            "campaign": campaign,
            "metric": metric,
            "op": op,
            "threshold": threshold,
            "statistic": statistic,
            "band": band,
            "day_obs_min": day_obs_min,
            "day_obs_max": day_obs_max,
            "format": format,
        }
        response = api(self)._request(
            "GET", "metrics/reobserve/", params={k: v for k, v in params.items() if v not in (None, "")}
        )
        return response.text

    def exposure_campaigns(self, exposure: int, repo: str | None = None) -> dict[str, Any]:
        """Every campaign you may view that processed ``exposure``: its groups and metric values, and the
        campaigns for which that is not known yet."""
        params = {"repo": repo} if repo else {}
        return api(self)._json("GET", f"metrics/exposures/{int(exposure)}/campaigns/", params=params)
