"""REST API of the tagging app: Butler repos, exposures and DataID sets (thin views over services/selectors)."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import Pagination
from core.parsers import FormParser, JSONParser, MultiPartParser
from core.roles import is_staff_member
from core.schema import paginated
from lsst_adapter.registry import RepoError

from .. import selectors, services
from ..dataids.uploads import upload_source
from ..dataids.writers import csv_chunks, ecsv_text, json_chunks
from ..filtersets import ExposureFilterSet
from ..models import ButlerRepo, DataIdSet, Exposure
from .serializers import (
    AlgebraSerializer,
    ButlerRepoSerializer,
    DataIdSetCreateSerializer,
    DataIdSetSerializer,
    DataIdSetShareSerializer,
    DataIdSetVersionSerializer,
    ExposureSerializer,
    TagRequestSerializer,
)

logger = logging.getLogger(__name__)


class ButlerRepoViewSet(viewsets.GenericViewSet):
    """Configured Butler repos. Everyone logged in may list them; staff add them and re-read their registry."""

    queryset = ButlerRepo.objects.none()
    serializer_class = ButlerRepoSerializer
    lookup_field = "label"
    lookup_value_regex = r"[A-Za-z0-9][A-Za-z0-9_.-]*"

    def list(self, request: Request) -> Response:
        return Response(ButlerRepoSerializer(selectors.butler_repo_list(), many=True).data)

    def retrieve(self, request: Request, label: str) -> Response:
        repo = selectors.butler_repo_list().filter(label=label).first()
        if repo is None:
            raise Http404(f"No Butler repo labelled {label!r}.")
        return Response(ButlerRepoSerializer(repo).data)

    @extend_schema(request=ButlerRepoSerializer, responses={201: ButlerRepoSerializer})
    def create(self, request: Request) -> Response:
        if not is_staff_member(request.user):
            raise PermissionDenied("Only staff members can add Butler repos.")
        serializer = ButlerRepoSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        repo = services.butler_repo_upsert(**serializer.validated_data)
        repo = selectors.butler_repo_list().get(pk=repo.pk)  # with its exposure count, as the list shows it
        return Response(ButlerRepoSerializer(repo).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, label: str) -> Response:
        """Copy the repo's exposure and detector records from its registry into the mirror (409 if the repo
        cannot be opened; the reason is logged, not sent)."""
        if not is_staff_member(request.user):
            raise PermissionDenied("Only staff members can refresh a repo's exposure list.")
        repo = selectors.butler_repo_get(label=label)
        try:
            return Response(services.repo_mirror_sync(repo=repo))
        except RepoError:
            logger.exception("Could not read the registry of Butler repo %s", repo.label)
            return Response(
                {"detail": f"Could not read the registry of Butler repo {repo.label}; ask an administrator."},
                status=status.HTTP_409_CONFLICT,
            )


def repo_from_query(request: Request) -> ButlerRepo:
    """The Butler repo of ``?repo=<label>`` (404 if unknown), or the only one there is."""
    label = request.query_params.get("repo")
    if label:
        return selectors.butler_repo_get(label=label)
    repos = list(ButlerRepo.objects.all()[:2])
    if len(repos) != 1:
        raise ValidationError({"repo": ["Say which Butler repo: ?repo=<label>."]})
    return repos[0]


class ExposureViewSet(viewsets.GenericViewSet):
    """Exposures of a repo (``?repo=<label>``; the only repo if there is one), filtered like the browser."""

    queryset = Exposure.objects.none()
    serializer_class = ExposureSerializer
    filterset_class = ExposureFilterSet
    pagination_class = Pagination

    def _repo(self, request: Request) -> ButlerRepo:
        return repo_from_query(request)

    @extend_schema(parameters=[OpenApiParameter("repo", str, description="Butler repo label")])
    @paginated
    def list(self, request: Request) -> Response:
        qs = selectors.exposure_list(repo=self._repo(request), filters=request.query_params)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ExposureSerializer(page, many=True).data)

    @extend_schema(parameters=[OpenApiParameter("repo", str, description="Butler repo label")])
    def retrieve(self, request: Request, pk: str) -> Response:
        try:
            exposure_id = int(pk)
        except ValueError:
            raise Http404("Exposure ids are integers.") from None
        exposure = selectors.exposure_get(repo=self._repo(request), exposure_id=exposure_id)
        return Response(ExposureSerializer(exposure).data)


def dataidset_download_response(dataid_set: DataIdSet, version, fmt: str) -> HttpResponse:
    dims = list(version.dimensions)
    base = f"{dataid_set.name}-v{version.number}"
    if fmt == "ecsv":
        meta = {"dataid_set": dataid_set.name, "version": version.number, "repo": dataid_set.repo.label}
        response = HttpResponse(
            ecsv_text(dims, selectors.dataidset_rows(version=version), meta), content_type="text/plain; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{base}.ecsv"'
        return response
    rows = selectors.dataidset_rows(version=version)
    if fmt == "csv":
        streaming = StreamingHttpResponse(csv_chunks(dims, rows), content_type="text/csv; charset=utf-8")
        streaming["Content-Disposition"] = f'attachment; filename="{base}.csv"'
    else:
        streaming = StreamingHttpResponse(json_chunks(dims, rows), content_type="application/json")
        streaming["Content-Disposition"] = f'attachment; filename="{base}.json"'
    return streaming  # type: ignore[return-value]


class FileFormatNegotiation(DefaultContentNegotiation):
    """``?format=`` names the file format of a download, not a DRF renderer (which would answer 404 for
    csv and ecsv): errors are always rendered as JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = next((r for r in renderers if r.format == "json"), renderers[0])
        return renderer, renderer.media_type


class DataIdSetViewSet(viewsets.GenericViewSet):
    """DataID sets: named, versioned, sharable sets of data IDs checked against a Butler repo."""

    queryset = DataIdSet.objects.none()
    serializer_class = DataIdSetSerializer
    pagination_class = Pagination
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        parameters=[
            OpenApiParameter("repo", str, description="Butler repo label"),
            OpenApiParameter("q", str, description="text in the name or description"),
            OpenApiParameter("name", str, description="exact name"),
        ]
    )
    @paginated
    def list(self, request: Request) -> Response:
        qs = selectors.dataidset_list(
            user=request.user, repo_label=request.query_params.get("repo"), q=request.query_params.get("q", "")
        )
        name = request.query_params.get("name")
        if name:
            qs = qs.filter(name=name)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(DataIdSetSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(DataIdSetSerializer(selectors.access_dataidset(request.user, pk)).data)

    @extend_schema(
        request={"multipart/form-data": DataIdSetCreateSerializer, "application/json": DataIdSetCreateSerializer},
        responses={201: DataIdSetVersionSerializer},
    )
    def create(self, request: Request) -> Response:
        serializer = DataIdSetCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        common = {
            "user": request.user,
            "repo_label": d["repo"],
            "name": d["name"],
            "reason": d["reason"],
            "description": d["description"],
            "visibility": d.get("visibility"),
            "drop_invalid": d["drop_invalid"],
            "comment": d["comment"],
        }
        dims = d.get("dimensions") or None
        if d.get("file"):
            with upload_source(d["file"], fmt=d["format"], dimensions=dims) as source:
                version = services.dataidset_create(source=source, **common)
        elif d.get("data_ids"):
            version = services.dataidset_create(
                source=services.UploadSource(
                    kind="records", records=d["data_ids"], dimensions=dims, format=d["format"] or "json"
                ),
                **common,
            )
        else:
            version = services.dataidset_create(
                source=services.UploadSource(kind="query", query=d["query"], dimensions=dims), **common
            )
        return Response(DataIdSetVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=DataIdSetVersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str) -> Response:
        dataid_set = selectors.access_dataidset(request.user, pk)
        return Response(DataIdSetVersionSerializer(dataid_set.versions.order_by("-number"), many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=["json", "csv", "ecsv"], description="default json"),
            OpenApiParameter("version", int, description="version number (default: latest)"),
        ],
        responses={
            (200, "application/json"): {"type": "array", "items": {"type": "object", "additionalProperties": {}}},
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "text/plain"): OpenApiTypes.STR,  # ECSV, for pipetask --data-id-table
        },
    )
    @action(detail=True, methods=["get"], content_negotiation_class=FileFormatNegotiation)
    def download(self, request: Request, pk: str):
        dataid_set = selectors.access_dataidset(request.user, pk)
        version = selectors.dataidset_version(dataid_set=dataid_set, number=request.query_params.get("version"))
        fmt = (request.query_params.get("format") or "json").lower()
        if fmt not in ("json", "csv", "ecsv"):
            raise ValidationError({"format": ["Use json, csv or ecsv."]})
        return dataidset_download_response(dataid_set, version, fmt)

    @extend_schema(methods=["POST"], request=TagRequestSerializer, responses={202: DataIdSetVersionSerializer})
    @extend_schema(
        methods=["GET"],
        parameters=[OpenApiParameter("version", int, description="version number (default: latest)")],
        responses=DataIdSetVersionSerializer,
    )
    @action(detail=True, methods=["get", "post"], url_path="tag-collection")
    def tag_collection(self, request: Request, pk: str) -> Response:
        """Start (POST) or follow (GET) the resolution of a version into a TAGGED collection."""
        dataid_set = selectors.access_dataidset(request.user, pk)
        if request.method == "GET":
            version = selectors.dataidset_version(dataid_set=dataid_set, number=request.query_params.get("version"))
            return Response(DataIdSetVersionSerializer(version).data)
        serializer = TagRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        version = selectors.dataidset_version(dataid_set=dataid_set, number=d.get("version"))
        version = services.dataidset_tag_start(
            user=request.user,
            version_id=version.pk,
            dataset_type=d["dataset_type"],
            input_collections=d["input_collections"],
            collection=d["collection"],
        )
        return Response(DataIdSetVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=DataIdSetShareSerializer, responses=DataIdSetSerializer)
    @action(detail=True, methods=["post"])
    def share(self, request: Request, pk: str) -> Response:
        selectors.access_dataidset(request.user, pk, "change")  # 404/403 before any complaint about the body
        serializer = DataIdSetShareSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        dataid_set = services.dataidset_share(
            user=request.user,
            set_id=int(pk),
            username=d["username"] or None,
            group=d["group"] or None,
            permission=d["permission"],
            grant=d["grant"],
        )
        return Response(DataIdSetSerializer(dataid_set).data)

    @extend_schema(request=AlgebraSerializer, responses={201: DataIdSetVersionSerializer})
    @action(detail=False, methods=["post"])
    def algebra(self, request: Request) -> Response:
        """Union, intersection or difference of sets with the same dimensions, as a new set."""
        serializer = AlgebraSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        version_ids = []
        for parent in d["parents"]:
            dataid_set = selectors.access_dataidset(request.user, parent["set"])
            version_ids.append(selectors.dataidset_version(dataid_set=dataid_set, number=parent.get("version")).pk)
        version = services.dataidset_algebra(
            user=request.user,
            operation=d["operation"],
            parent_version_ids=version_ids,
            name=d["name"],
            reason=d["reason"],
            description=d["description"],
            visibility=d["visibility"],
        )
        return Response(DataIdSetVersionSerializer(version).data, status=status.HTTP_201_CREATED)
