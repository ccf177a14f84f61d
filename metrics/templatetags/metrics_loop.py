"""The campaign page's "Metrics and quality gates" panel, filled from a selector."""

from __future__ import annotations

from django import template

from ..selectors import campaign_metric_summary

register = template.Library()


@register.inclusion_tag("metrics/_campaign_loop.html", takes_context=True)
def campaign_metrics_panel(context, campaign):
    """``campaign`` is the one the page fetched through ``access_campaign`` (the user may view it)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    return {"campaign": campaign, "summary": campaign_metric_summary(user=user, campaign=campaign)}
