"""FilterSets of exposure flags and bad-data records, shared by the pages, the API and the selectors.

Flag filters follow the parameter names of Rubin's exposure log (``find_messages``): ``instruments``,
``obs_id`` (contains), ``min_day_obs`` (inclusive) and ``max_day_obs`` (exclusive), ``message_text``
(contains), ``user_ids``, ``user_agents``, ``tags`` (any of), ``exposure_flags``, ``is_human``,
``is_valid`` (default: valid only), ``has_parent_id``, ``min_date_added``/``max_date_added``, ``order_by``.
List parameters may be repeated (``?tags=a&tags=b``) or comma-separated.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q

from .models import BadDataRecord, BadDataStatus, ExposureFlag, ExposureFlagValue

FLAG_ORDER_FIELDS = (
    "id",
    "instrument",
    "obs_id",
    "day_obs",
    "seq_num",
    "exposure",
    "level",
    "exposure_flag",
    "user_id",
    "user_agent",
    "is_human",
    "is_valid",
    "date_added",
    "date_invalidated",
)


class ValuesField(forms.Field):
    """Any number of values, from repeated parameters and/or comma-separated text."""

    widget = forms.SelectMultiple  # reads every value of a repeated query parameter

    def __init__(self, *args, allowed: tuple[str, ...] | None = None, signed: bool = False, **kwargs):
        self.allowed, self.signed = allowed, signed
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        return [part.strip() for v in values for part in str(v).split(",") if part.strip()]

    def validate(self, value):
        super().validate(value)
        if self.allowed is not None:
            unknown = [v for v in value if (v[1:] if self.signed and v.startswith("-") else v) not in self.allowed]
            if unknown:
                raise forms.ValidationError(f"Unknown value {unknown[0]!r}; use {', '.join(self.allowed)}.")


class ValuesFilter(django_filters.Filter):
    field_class = ValuesField

    def filter(self, qs, value):
        return qs.filter(**{f"{self.field_name}__in": value}) if value else qs


class BooleanOrAny(forms.ChoiceField):
    def __init__(self, *args, **kwargs):
        kwargs["choices"] = [("true", "true"), ("false", "false"), ("any", "any")]
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        return {"1": "true", "yes": "true", "0": "false", "no": "false"}.get(str(value).lower(), str(value).lower())


class BooleanOrAnyFilter(django_filters.Filter):
    field_class = BooleanOrAny

    def filter(self, qs, value):
        if value in ("", None, "any"):
            return qs
        return qs.filter(**{self.field_name: value == "true"})


class FlagFilterSet(django_filters.FilterSet):
    repo = django_filters.CharFilter(field_name="repo__label", label="Butler repo")
    instruments = ValuesFilter(field_name="instrument", label="Instruments")
    instrument = django_filters.CharFilter(field_name="instrument")
    obs_id = django_filters.CharFilter(lookup_expr="icontains", label="obs_id contains")
    exposure = django_filters.NumberFilter(label="Exposure id")
    day_obs = django_filters.NumberFilter(label="Night (day_obs)")
    min_day_obs = django_filters.NumberFilter(field_name="day_obs", lookup_expr="gte", label="Night from (inclusive)")
    max_day_obs = django_filters.NumberFilter(field_name="day_obs", lookup_expr="lt", label="Night before (exclusive)")
    seq_num = django_filters.NumberFilter()
    message_text = django_filters.CharFilter(lookup_expr="icontains", label="Text contains")
    user_ids = ValuesFilter(field_name="user_id", label="Users")
    user_agents = ValuesFilter(field_name="user_agent", label="User agents")
    tags = ValuesFilter(method="any_tag", label="Tags (any of)")
    exposure_flags = ValuesFilter(field_name="exposure_flag", allowed=tuple(ExposureFlagValue.values), label="Flags")
    is_human = BooleanOrAnyFilter()
    is_valid = BooleanOrAnyFilter()
    has_parent_id = BooleanOrAnyFilter(method="has_parent", label="Is an edit")
    min_date_added = django_filters.IsoDateTimeFilter(field_name="date_added", lookup_expr="gte")
    max_date_added = django_filters.IsoDateTimeFilter(field_name="date_added", lookup_expr="lt")
    order_by = ValuesFilter(method="ordering", allowed=FLAG_ORDER_FIELDS, signed=True, label="Order by")

    class Meta:
        model = ExposureFlag
        fields: list[str] = []

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        # The exposure log answers valid messages unless asked otherwise.
        if not self.form.cleaned_data.get("is_valid"):
            queryset = queryset.filter(is_valid=True)
        if not self.form.cleaned_data.get("order_by"):
            queryset = queryset.order_by("-date_added", "id")
        return queryset

    def any_tag(self, queryset, name, value):
        if not value:
            return queryset
        condition = Q()
        for tag in value:
            condition |= Q(tags__contains=[tag])
        return queryset.filter(condition)

    def has_parent(self, queryset, name, value):
        if value in ("", None, "any"):
            return queryset
        return queryset.filter(parent__isnull=value != "true")

    def ordering(self, queryset, name, value):
        if not value:
            return queryset
        keys = list(value)
        if not any(k.lstrip("-") == "id" for k in keys):
            keys.append("id")  # a repeatable order, so limit and offset page through every message once
        return queryset.order_by(*keys)


class BadDataFilterSet(django_filters.FilterSet):
    repo = django_filters.CharFilter(field_name="repo__label", label="Butler repo")
    status = django_filters.MultipleChoiceFilter(choices=BadDataStatus.choices)
    source = django_filters.CharFilter()
    exposure = django_filters.NumberFilter()
    detector = django_filters.NumberFilter()
    dataset_type = django_filters.CharFilter()
    q = django_filters.CharFilter(method="search", label="Text")

    class Meta:
        model = BadDataRecord
        fields: list[str] = []

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(summary__icontains=value)
            | Q(explanation__icontains=value)
            | Q(key__icontains=value)
            | Q(dataset_type__icontains=value)
        )
