"""Template helpers used across the UI."""

from __future__ import annotations

import json

from django import template
from django.utils.html import format_html

from core.markdown import render_markdown

register = template.Library()


@register.filter
def markdown(text: str):
    return render_markdown(text)


@register.filter
def status_badge(status: str):
    return format_html('<span class="badge badge-{}">{}</span>', status, status.replace("_", " "))


@register.filter
def as_value(value) -> str:
    """A history value in one readable line."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with some parameters replaced (for sorting and paging links)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def duration(start, end) -> str:
    """The time from ``start`` to ``end`` in words ("4 min 05 s"); "—" when either is unknown."""
    if not start or not end:
        return "—"
    seconds = round((end - start).total_seconds())
    if seconds < 0:
        return "—"
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
