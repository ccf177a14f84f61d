"""Writes of the metrics app. For now one: the loop from QA back to the next campaign's selection."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from campaigns.models import Campaign
from core.errors import InputError
from core.roles import is_staff_member
from tagging.models import DataIdSetVersion
from tagging.services import UploadSource, dataidset_create

from .selectors import OPERATORS, MetricQuery, metric_threshold_data_ids


@transaction.atomic
def metric_selection_create(
    *,
    user,
    query: MetricQuery,
    campaign: Campaign,
    operator: str,
    threshold: float,
    name: str,
    reason: str,
    whole_exposures: bool = False,
) -> DataIdSetVersion:
    """Store the data IDs of ``campaign`` whose metric is < or > ``threshold`` (with the query's other
    filters) as a DataID set, through the DataID-set service (which checks every data ID against the
    repo), and record the recipe as the version's provenance. The set can then be a later campaign's
    include or exclude list."""
    if not is_staff_member(user):
        raise PermissionDenied("Only staff members can create DataID sets.")
    if campaign.pk not in query.campaign_ids:
        raise InputError("The campaign to select from is not one of the explorer's campaigns.", field="campaign")
    if operator not in OPERATORS:
        raise InputError(f"Operator must be one of {', '.join(OPERATORS)}.", field="operator")
    dimensions, records = metric_threshold_data_ids(
        query=query, campaign=campaign, operator=operator, threshold=threshold, whole_exposures=whole_exposures
    )
    recipe: dict[str, Any] = {
        "campaign": campaign.name,
        "campaign_id": campaign.pk,
        "metric": query.metric,
        "operator": OPERATORS[operator],
        "threshold": threshold,
        "filters": query.filters(),
        "whole_exposures": whole_exposures,
    }
    if not records:
        raise InputError(
            f"No data ID of {campaign.name} has {query.metric} {OPERATORS[operator]} {threshold:g} with these "
            "filters; nothing was stored.",
            field="threshold",
        )
    version = dataidset_create(
        user=user,
        repo_label=campaign.butler_repo_id,
        name=name,
        reason=reason,
        source=UploadSource(kind="records", records=records, dimensions=dimensions, format="metric-selection"),
        comment=f"{query.metric} {OPERATORS[operator]} {threshold:g} in campaign {campaign.name}",
    )
    # The DataID-set service records where records came from but not why: the recipe is added here,
    # in the same transaction, so the set says which selection made it.
    source = {**version.source, "recipe": recipe}
    DataIdSetVersion.objects.filter(pk=version.pk).update(source=source)
    version.source = source
    return version
