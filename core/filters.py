"""Helpers shared by every app's FilterSets."""

from __future__ import annotations

from typing import Any

from django.http import QueryDict


def without_blanks(filters) -> dict[str, Any] | QueryDict:
    """A blank filter ("Any status" in a form, ``?status=`` in a URL) means no filter, not an invalid choice."""
    if not filters:
        return {}
    if isinstance(filters, QueryDict):
        cleaned = filters.copy()
        for key in [k for k, values in cleaned.lists() if not any(str(v).strip() for v in values)]:
            del cleaned[key]
        return cleaned
    return {k: v for k, v in filters.items() if v not in (None, "", [])}
