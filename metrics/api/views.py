"""REST API of the metrics app (thin views over services and selectors)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import Pagination, SelectorFilters
from core.parsers import FormParser, JSONParser, MultiPartParser
from tagging import selectors as tagging_selectors
from tagging.api.views import FileFormatNegotiation, repo_from_query

from .. import reobserve, selectors, selectors_exposure, services
from ..conditions import OPERATORS, STATISTIC_PATTERN, STATISTICS_HELP
from ..filtersets import MetricValueFilterSet
from ..models import MetricValue
from .serializers import IngestSerializer, MetricValueSerializer


class MetricIngestView(APIView):
    """Store metric values (staff): a file upload (``file``), one ``bundle`` with its ``data_id`` and ``run``, or
    flat ``records``; tied to a ``campaign`` and ``run`` or to an outside ``source`` label. The report lists the
    values that could not be placed (where, key, reason); the others are stored."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(request=IngestSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        serializer = IngestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        campaign_id = None
        if d["campaign"]:
            campaign_id = selectors.campaign_for_metrics(user=request.user, campaign=d["campaign"]).pk
        upload = d.get("file")
        report = services.metric_values_ingest(
            user=request.user,
            repo_label=d["repo"],
            stream=upload.open("rb") if upload is not None else None,
            records=d.get("records"),
            bundle=d.get("bundle"),
            fmt=d["format"],
            data_id=d.get("data_id") or {},
            campaign_id=campaign_id,
            run=d["run"],
            source=d["source"],
            action=d["action"],
            units=d.get("units") or {},
            dataset_type=d["dataset_type"],
        )
        return Response(report.as_dict(), status=status.HTTP_200_OK)


class MetricValueListView(ListAPIView):
    """Metric values you may see: campaigns you may view, and outside sources. Filters: campaign, step, metric,
    source, run, exposure, visit, detector, band, day_obs_min/max, value_min/max."""

    serializer_class = MetricValueSerializer
    pagination_class = Pagination
    filterset_class = MetricValueFilterSet
    filter_backends = [SelectorFilters]  # the selector applies the FilterSet; the schema documents it

    def get_queryset(self):
        params = self.request.query_params
        if params.get("campaign"):
            selectors.campaign_for_metrics(user=self.request.user, campaign=params["campaign"])  # 404 if not visible
        return selectors.metric_value_list(user=self.request.user, filters=params)


class MetricNameListView(GenericAPIView):
    """Metric names (with unit and count) among the values you may see; same filters as the values."""

    queryset = MetricValue.objects.none()  # for the schema; the selector reads
    filterset_class = MetricValueFilterSet
    filter_backends = [SelectorFilters]

    @extend_schema(
        responses=inline_serializer(
            "MetricName",
            {"metric": serializers.CharField(), "unit": serializers.CharField(), "count": serializers.IntegerField()},
            many=True,
        )
    )
    def get(self, request: Request) -> Response:
        if request.query_params.get("campaign"):
            selectors.campaign_for_metrics(user=request.user, campaign=request.query_params["campaign"])
        return Response(selectors.metric_name_list(user=request.user, filters=request.query_params))


class ExposureCampaignsView(APIView):
    """Every campaign you may view that processed the exposure (one of its groups covers it, or it measured
    it): its groups (step, name, status; ``covered`` by the group's selection, ``measured`` if it wrote values)
    and its metric values (count, mean, min, max over the detectors); and the campaigns for which that is not
    known yet (groups not worked out, or that the exposure mirror cannot answer). ``?repo=<label>`` unless
    there is one repo."""

    @extend_schema(
        parameters=[OpenApiParameter("repo", str, description="Butler repo label")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, exposure_id: int) -> Response:
        exposure = tagging_selectors.exposure_get(repo=repo_from_query(request), exposure_id=exposure_id)
        found = selectors_exposure.exposure_processing(user=request.user, exposure=exposure)
        body = {"repo": exposure.repo.label, "instrument": exposure.instrument, "exposure": exposure.exposure_id}
        return Response(body | found.as_dict())


class ReobservationView(APIView):
    """Exposures of a campaign to observe again: those whose metric (a statistic over their detectors) satisfies
    ``metric op threshold``; optional band and night range. ``format=csv`` for CSV, else JSON."""

    content_negotiation_class = FileFormatNegotiation

    @extend_schema(
        parameters=[
            OpenApiParameter("campaign", str, required=True, description="id or name"),
            OpenApiParameter("metric", str, required=True, description="e.g. psf_fwhm"),
            OpenApiParameter("op", str, required=True, enum=list(OPERATORS)),
            OpenApiParameter("threshold", float, required=True, description="a finite number"),
            OpenApiParameter(
                "statistic",
                {"type": "string", "pattern": STATISTIC_PATTERN, "example": "median"},
                description=f"over the exposure's detectors: {STATISTICS_HELP} (default median)",
            ),
            OpenApiParameter("band", str),
            OpenApiParameter("day_obs_min", {"type": "integer", "minimum": 10000101, "maximum": 99991231}),
            OpenApiParameter("day_obs_max", {"type": "integer", "minimum": 10000101, "maximum": 99991231}),
            OpenApiParameter("format", str, enum=["json", "csv"]),
        ],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request: Request) -> HttpResponse:
        return reobservation_response(request.user, request.query_params)


def reobservation_response(user, params) -> HttpResponse:
    """The download shared by the API and the campaign page's button."""
    from django.core.exceptions import ValidationError

    if not params.get("campaign"):
        raise ValidationError({"campaign": "Which campaign's metrics decide (id or name)."})
    campaign = selectors.campaign_for_metrics(user=user, campaign=params["campaign"])
    clean = reobserve.clean_request(params)
    rows = list(reobserve.reobservation_rows(campaign=campaign, request=clean))
    fmt = (params.get("format") or "json").lower()
    if fmt not in ("json", "csv"):
        raise ValidationError({"format": "Use json or csv."})
    stem = f"reobserve-{campaign.name}"
    if fmt == "csv":
        response = HttpResponse(reobserve.as_csv(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
    else:
        response = HttpResponse(
            reobserve.as_json(rows, campaign=campaign, request=clean), content_type="application/json"
        )
        response["Content-Disposition"] = f'attachment; filename="{stem}.json"'
    return response
