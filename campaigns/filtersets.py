"""One FilterSet for campaigns, shared by the HTML list, the API list and the list selector."""

from __future__ import annotations

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Q

from core.filters import documented

from .choices import CampaignStatus, CampaignType, Visibility
from .models import Campaign

SORTS = {
    "name": "name",
    "-name": "-name",
    "updated": "updated",
    "-updated": "-updated",
    "created": "created",
    "-created": "-created",
    "status": "status",
    "-status": "-status",
    "type": "campaign_type",
    "-type": "-campaign_type",
    "owner": "owner__username",
    "-owner": "-owner__username",
}


class CampaignFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    name = django_filters.CharFilter(field_name="name", label="Exact name")
    campaign_type = django_filters.MultipleChoiceFilter(choices=CampaignType.choices, label="Type")
    status = django_filters.MultipleChoiceFilter(choices=CampaignStatus.choices)
    visibility = django_filters.ChoiceFilter(choices=Visibility.choices)
    owner = django_filters.CharFilter(field_name="owner__username", label="Owner (username)")
    butler_repo = django_filters.CharFilter(field_name="butler_repo__label", label="Butler repo")
    created_after = django_filters.DateFilter(
        field_name="created", lookup_expr="date__gte", label="Created on or after"
    )
    created_before = django_filters.DateFilter(
        field_name="created", lookup_expr="date__lte", label="Created on or before"
    )
    updated_after = django_filters.DateFilter(
        field_name="updated", lookup_expr="date__gte", label="Updated on or after"
    )
    archived = documented(
        django_filters.ChoiceFilter(
            choices=[("no", "Not archived"), ("yes", "Archived"), ("all", "All")],
            method="filter_archived",
            empty_label=None,
            label="Archived",
        ),
        {"type": "string", "enum": ["no", "yes", "all"], "description": "default: no"},
    )
    sort = django_filters.ChoiceFilter(choices=[(k, k) for k in SORTS], method="sort_by", label="Sort")

    class Meta:
        model = Campaign
        fields: list[str] = []

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(name__icontains=value)
            | Q(reason__icontains=value)
            | Q(description__icontains=value)
            | Q(scope__icontains=value)
            | Q(pipeline__icontains=value)
        )

    def filter_archived(self, queryset, name, value):
        if value == "all":
            return queryset
        return queryset.filter(archived=(value == "yes"))

    def sort_by(self, queryset, name, value):
        return queryset.order_by(SORTS[value], "pk")

    @property
    def qs(self):
        qs = super().qs
        # Archived campaigns are hidden unless asked for.
        if not self.form.cleaned_data.get("archived"):
            qs = qs.filter(archived=False)
        return qs


def owner_choices():
    return get_user_model().objects.filter(owned_campaigns__isnull=False).distinct().order_by("username")
