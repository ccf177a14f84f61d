from django.urls import path

from .views import (
    ExposureCampaignsView,
    MetricIngestView,
    MetricNameListView,
    MetricValueListView,
    ReobservationView,
)

urlpatterns = [
    path("metrics/ingest/", MetricIngestView.as_view(), name="metrics-ingest"),
    path("metrics/values/", MetricValueListView.as_view(), name="metrics-values"),
    path("metrics/names/", MetricNameListView.as_view(), name="metrics-names"),
    path("metrics/reobserve/", ReobservationView.as_view(), name="metrics-reobserve"),
    path(
        "metrics/exposures/<id:exposure_id>/campaigns/",
        ExposureCampaignsView.as_view(),
        name="metrics-exposure-campaigns",
    ),
]
