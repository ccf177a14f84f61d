"""FilterSets of the tagging app, shared by pages, API and selectors."""

from __future__ import annotations

import django_filters
from django.db.models import Q

from core.filters import IntegerFilter

from .models import Exposure


class ExposureFilterSet(django_filters.FilterSet):
    day_obs = IntegerFilter(label="Night (day_obs)")
    day_obs_min = IntegerFilter(field_name="day_obs", lookup_expr="gte", label="Night from")
    day_obs_max = IntegerFilter(field_name="day_obs", lookup_expr="lte", label="Night to")
    band = django_filters.CharFilter()
    observation_type = django_filters.CharFilter(label="Observation type")
    target = django_filters.CharFilter(field_name="target_name", lookup_expr="icontains", label="Target")
    instrument = django_filters.CharFilter()
    q = django_filters.CharFilter(method="search", label="obs_id or exposure id")

    class Meta:
        model = Exposure
        fields: list[str] = []

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        condition = Q(obs_id__icontains=value)
        if value.isdigit():
            condition |= Q(exposure_id=int(value))
        return queryset.filter(condition)
