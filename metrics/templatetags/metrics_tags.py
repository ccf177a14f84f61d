"""Template tags of the metrics app: the exposure page's "processed by" section gets its data here, from a
selector, so the tagging app's view needs no change for it."""

from __future__ import annotations

from django import template

from metrics import selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def exposure_processing(context, exposure) -> selectors.ExposureProcessing:
    """Campaigns the current user may view that processed ``exposure``: their groups, their metric values."""
    return selectors.exposure_processing(user=context["request"].user, exposure=exposure)
