"""REST API of exposure flags (``/api/v1/flags/``, parameters as Rubin's exposure log) and of the
bad-data register (``/api/v1/bad-data/``). Thin: services write, selectors read."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import LimitOffsetPagination, SelectorFilters
from core.parsers import FormParser, JSONParser, MultiPartParser
from core.schema import paginated

from .. import selectors_flags
from ..filtersets_flags import BadDataFilterSet, FlagFilterSet
from ..models import BadDataRecord, ExposureFlag
from ..services import baddata as baddata_services
from ..services import flags as flag_services
from .serializers_flags import (
    BadDataAddSerializer,
    BadDataEditSerializer,
    BadDataEventSerializer,
    BadDataFromFailureSerializer,
    BadDataSerializer,
    BadDataStatusSerializer,
    FlagAddSerializer,
    FlagEditSerializer,
    FlagImportSerializer,
    FlagSerializer,
)


class FlagPagination(LimitOffsetPagination):
    """``limit`` and ``offset`` as in the exposure log (default 50 messages; at most 5000 a page)."""


class NoFilterBackends:
    """The selectors apply the FilterSets (the default DRF backend would apply them a second time); the schema
    documents them."""

    filter_backends = [SelectorFilters]


class FlagViewSet(NoFilterBackends, viewsets.GenericViewSet):
    """Exposure flags. Every logged-in user reads; staff add, edit (a new message replaces the old one)
    and delete (the message stays, ``is_valid`` false)."""

    queryset = ExposureFlag.objects.none()
    serializer_class = FlagSerializer
    filterset_class = FlagFilterSet
    pagination_class = FlagPagination
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    lookup_value_regex = r"[0-9a-fA-F-]{32,36}"

    @paginated
    def list(self, request: Request) -> Response:
        qs = selectors_flags.flag_list(user=request.user, filters=request.query_params)
        paginator = FlagPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(FlagSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(FlagSerializer(selectors_flags.access_flag(request.user, pk)).data)

    @extend_schema(request=FlagAddSerializer, responses={201: FlagSerializer})
    def create(self, request: Request) -> Response:
        selectors_flags.require_flag_writer(request.user)
        serializer = FlagAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = dict(serializer.validated_data)
        flag = flag_services.flag_add(user=request.user, repo_label=d.pop("repo"), **d)
        return Response(FlagSerializer(flag).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=FlagEditSerializer, responses={201: FlagSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        """Edit: answers the new message (the old one is now its parent, not valid)."""
        flag = selectors_flags.access_flag(request.user, pk, "change")
        serializer = FlagEditSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        new = flag_services.flag_edit(user=request.user, flag_id=flag.pk, **serializer.validated_data)
        return Response(FlagSerializer(new).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: FlagSerializer})
    def destroy(self, request: Request, pk: str) -> Response:
        """Delete = invalidate: the message stays, with ``is_valid`` false."""
        flag = selectors_flags.access_flag(request.user, pk, "change")
        return Response(FlagSerializer(flag_services.flag_invalidate(user=request.user, flag_id=flag.pk)).data)

    @extend_schema(request=None, responses={200: FlagSerializer})
    @action(detail=True, methods=["post"])
    def invalidate(self, request: Request, pk: str) -> Response:
        return self.destroy(request, pk)

    @extend_schema(responses=FlagSerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str) -> Response:
        """Every version of this flag's line of edits, oldest first (the parent chain)."""
        flag = selectors_flags.access_flag(request.user, pk)
        return Response(FlagSerializer(selectors_flags.flag_history(flag=flag), many=True).data)

    @extend_schema(
        request={"multipart/form-data": FlagImportSerializer, "application/json": FlagImportSerializer},
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=False, methods=["post"], url_path="import")
    def import_messages(self, request: Request) -> Response:
        """Import a JSON export of exposure-log messages: all or nothing, idempotent by message id."""
        selectors_flags.require_flag_writer(request.user)
        serializer = FlagImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        data = d["file"] if "file" in d else d["messages"]
        return Response(flag_services.flag_import(user=request.user, repo_label=d["repo"], data=data))


class BadDataViewSet(NoFilterBackends, viewsets.GenericViewSet):
    """The bad-data register. Every logged-in user reads; staff record, edit and change status."""

    queryset = BadDataRecord.objects.none()
    serializer_class = BadDataSerializer
    filterset_class = BadDataFilterSet

    @paginated
    def list(self, request: Request) -> Response:
        qs = selectors_flags.bad_data_list(user=request.user, filters=request.query_params)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(BadDataSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(BadDataSerializer(selectors_flags.access_bad_data(request.user, pk)).data)

    @extend_schema(request=BadDataAddSerializer, responses={201: BadDataSerializer})
    def create(self, request: Request) -> Response:
        selectors_flags.require_bad_data_writer(request.user)
        serializer = BadDataAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = dict(serializer.validated_data)
        record = baddata_services.bad_data_add(user=request.user, repo_label=d.pop("repo"), **d)
        return Response(BadDataSerializer(record).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=BadDataEditSerializer, responses={200: BadDataSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        record = selectors_flags.access_bad_data(request.user, pk)
        selectors_flags.require_bad_data_writer(request.user)
        serializer = BadDataEditSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record = baddata_services.bad_data_edit(user=request.user, record_id=record.pk, **serializer.validated_data)
        return Response(BadDataSerializer(record).data)

    @extend_schema(request=BadDataStatusSerializer, responses={200: BadDataSerializer})
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request: Request, pk: str) -> Response:
        record = selectors_flags.access_bad_data(request.user, pk)
        selectors_flags.require_bad_data_writer(request.user)
        serializer = BadDataStatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record = baddata_services.bad_data_set_status(
            user=request.user, record_id=record.pk, **serializer.validated_data
        )
        return Response(BadDataSerializer(record).data)

    @extend_schema(responses=BadDataEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str) -> Response:
        record = selectors_flags.access_bad_data(request.user, pk)
        return Response(BadDataEventSerializer(selectors_flags.bad_data_events(record=record), many=True).data)

    @extend_schema(request=BadDataFromFailureSerializer, responses={201: BadDataSerializer})
    @action(detail=False, methods=["post"], url_path="from-failure")
    def from_failure(self, request: Request) -> Response:
        """Record the data ID of a failed quantum (an execution error record) as bad data."""
        selectors_flags.require_bad_data_writer(request.user)
        serializer = BadDataFromFailureSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        record = baddata_services.bad_data_from_failure(
            user=request.user, quantum_error_id=d["quantum_error"], summary=d["summary"]
        )
        return Response(BadDataSerializer(record).data, status=status.HTTP_201_CREATED)
