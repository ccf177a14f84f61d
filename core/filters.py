"""Helpers shared by every app's FilterSets: blanks mean "no filter", and filter fields whose bad values are a
400 naming the parameter (never a 500, never silently ignored): integers that fit in 64 bits, finite numbers,
lists from repeated parameters, three-state booleans."""

from __future__ import annotations

import math
from typing import Any

import django_filters
from django import forms
from django.http import QueryDict
from drf_spectacular.drainage import set_override
from drf_spectacular.utils import extend_schema_field

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


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


class Int64Field(forms.IntegerField):
    """An integer that a database column can hold: ``1.5``, ``1e3``, ``NaN`` or 20 digits are errors."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", INT64_MIN)
        kwargs.setdefault("max_value", INT64_MAX)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        if isinstance(value, str) and len(value.strip()) > 21:  # before int() spends time on a huge string
            raise forms.ValidationError(f"Not an integer of at most 64 bits: {value[:24]}…")
        return super().to_python(value)


@extend_schema_field({"type": "integer", "format": "int64", "minimum": INT64_MIN, "maximum": INT64_MAX})
class IntegerFilter(django_filters.NumberFilter):
    """A number filter on an integer column: a whole number of at most 64 bits, else 400."""

    field_class = Int64Field


class FiniteFloatField(forms.FloatField):
    def validate(self, value):
        super().validate(value)
        if value is not None and not math.isfinite(value):
            raise forms.ValidationError("Give a finite number (not NaN or infinity).")


@extend_schema_field({"type": "number", "format": "double"})
class FloatFilter(django_filters.NumberFilter):
    """A number filter on a float column: a finite number, else 400."""

    field_class = FiniteFloatField


class ValuesField(forms.Field):
    """Any number of values from a repeated parameter (``?tags=a&tags=b``, as Rubin's exposure log takes them);
    ``split`` also splits each on commas (for a form's text box). ``allowed`` limits the values (``signed``: a
    leading ``-`` is allowed, as in ``order_by``)."""

    widget = forms.SelectMultiple  # reads every value of a repeated query parameter

    def __init__(
        self, *args, allowed: tuple[str, ...] | None = None, signed: bool = False, split: bool = True, **kwargs
    ):
        self.allowed, self.signed, self.split = allowed, signed, split
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        if not self.split:
            return [str(v).strip() for v in values if str(v).strip()]
        return [part.strip() for v in values for part in str(v).split(",") if part.strip()]

    def validate(self, value):
        super().validate(value)
        if any("\x00" in v for v in value):
            raise forms.ValidationError("Null characters are not allowed.")
        if self.allowed is not None:
            unknown = [v for v in value if (v[1:] if self.signed and v.startswith("-") else v) not in self.allowed]
            if unknown:
                raise forms.ValidationError(f"Unknown value {unknown[0]!r}; use {', '.join(self.allowed)}.")


def documented(filter_: django_filters.Filter, schema: dict) -> django_filters.Filter:
    """``filter_`` with its query parameter documented by ``schema`` (where the model field would mislead)."""
    set_override(filter_, "field", schema)
    return filter_


def document_as_list(filter_: django_filters.Filter, item: dict | None = None) -> None:
    """The schema of a list filter: an array of strings, one per repeated parameter (OpenAPI's default
    ``style: form, explode: true``), with the allowed values if there is a fixed set."""
    items = dict(item or {"type": "string"})
    allowed, signed = filter_.extra.get("allowed"), filter_.extra.get("signed")
    if allowed:
        items["enum"] = [*allowed, *(f"-{v}" for v in allowed)] if signed else list(allowed)
    set_override(filter_, "field", {"type": "array", "items": items})


class ValuesFilter(django_filters.Filter):
    """``field_name`` is one of the values (an SQL ``IN``)."""

    field_class = ValuesField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        document_as_list(self)

    def filter(self, qs, value):
        return qs.filter(**{f"{self.field_name}__in": value}) if value else qs


_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}


class TriStateField(forms.Field):
    """``true``, ``false`` or ``either`` (``any`` is the same): the exposure log's TriState. Yes/no spellings of
    a boolean are read as true/false; anything else is an error."""

    def to_python(self, value):
        text = str(value).strip().lower() if value not in (None, "") else ""
        if text in ("", "either", "any"):
            return "either" if text else ""
        if text in _TRUE:
            return "true"
        if text in _FALSE:
            return "false"
        raise forms.ValidationError(f"Use true, false or either, not {str(value)[:40]!r}.")


@extend_schema_field({"type": "string", "enum": ["true", "false", "either"]})
class TriStateFilter(django_filters.Filter):
    """``field_name`` is true / false, or either (no filter)."""

    field_class = TriStateField

    def filter(self, qs, value):
        if value in ("", None, "either"):
            return qs
        return qs.filter(**{self.field_name: value == "true"})


class BooleanField(forms.Field):
    """A boolean query parameter (``true``/``false``, ``1``/``0``, ``yes``/``no``...); anything else is an error."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise forms.ValidationError(f"Use true or false, not {str(value)[:40]!r}.")

    def validate(self, value):
        return None  # None (not given) is allowed


@extend_schema_field({"type": "boolean"})
class IsNullFilter(django_filters.Filter):
    """``has_<field>``: true keeps rows where ``field_name`` is set, false those where it is null."""

    field_class = BooleanField

    def filter(self, qs, value):
        if value is None:
            return qs
        return qs.filter(**{f"{self.field_name}__isnull": not value})
