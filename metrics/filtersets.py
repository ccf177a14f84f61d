"""One FilterSet for metric values, shared by the API list and the selectors."""

from __future__ import annotations

import django_filters
from django.db.models import Q

from core.filters import FloatFilter, IntegerFilter

from .models import MetricValue


class MetricValueFilterSet(django_filters.FilterSet):
    campaign = django_filters.CharFilter(method="by_campaign", label="Campaign (id or name)")
    step = django_filters.CharFilter(field_name="step__name", label="Step name")
    metric = django_filters.CharFilter(method="by_metric", label="Metric (stored name, or its last part)")
    source = django_filters.CharFilter(field_name="source", label="Outside source label")
    run = django_filters.CharFilter(field_name="run")
    exposure = IntegerFilter(field_name="exposure")
    visit = IntegerFilter(field_name="visit")
    detector = IntegerFilter(field_name="detector")
    band = django_filters.CharFilter(field_name="band")
    day_obs_min = IntegerFilter(field_name="day_obs", lookup_expr="gte", label="day_obs from")
    day_obs_max = IntegerFilter(field_name="day_obs", lookup_expr="lte", label="day_obs to")
    value_min = FloatFilter(field_name="value", lookup_expr="gte")
    value_max = FloatFilter(field_name="value", lookup_expr="lte")

    class Meta:
        model = MetricValue
        fields: list[str] = []

    def by_campaign(self, queryset, name, value):
        value = value.strip()
        if value.isdigit():
            return queryset.filter(campaign_id=int(value))
        return queryset.filter(campaign__name=value)

    def by_metric(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(Q(metric=value) | Q(metric__endswith="." + value))
