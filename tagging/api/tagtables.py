"""REST API of tag tables (``/api/v1/tag-tables/``): thin views over the tag-table services and selectors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from core import api
from core.api import Pagination
from core.parsers import FormParser, JSONParser, MultiPartParser
from core.schema import paginated

from .. import selectors_tagtables as selectors
from ..models import ColumnType, Polarity, SetVisibility, TagColumn, TagRowChange, TagTable, TagTableEvent
from ..services import tagtables as services
from .views import FileFormatNegotiation

# --- serializers (shapes only; the rules live in the services) ---------------------------------------


class TagColumnSerializer(serializers.ModelSerializer):
    class Meta:
        model = TagColumn
        fields = ["key", "name", "type", "enum_values", "unit", "description", "required", "position", "retired"]


class TagColumnSpecSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=ColumnType.choices)
    enum_values = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    unit = serializers.CharField(required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    required = serializers.BooleanField(required=False, default=False)


class TagColumnAddSerializer(TagColumnSpecSerializer):
    version = api.IntegerField(required=False, help_text="table version the change is based on")
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class TagColumnChangeSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, help_text="rename (values are kept)")
    unit = serializers.CharField(required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    required = serializers.BooleanField(required=False)
    enum_values = serializers.ListField(child=serializers.CharField(), required=False, help_text="only additions")
    retired = serializers.BooleanField(required=False, help_text="retire (values kept) or bring back")
    version = api.IntegerField(required=False)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ShareEntrySerializer(serializers.Serializer):
    username = serializers.CharField(required=False, allow_blank=True, default="")
    group = serializers.CharField(required=False, allow_blank=True, default="")
    permission = serializers.ChoiceField(choices=[("view", "view"), ("change", "change")], default="view")


class TagTableShareSerializer(ShareEntrySerializer):
    grant = serializers.BooleanField(default=True)


class TagTableSerializer(serializers.ModelSerializer):
    repo = serializers.CharField(source="repo.label")
    owner = serializers.CharField(source="owner.username")
    columns = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    page = serializers.SerializerMethodField()

    class Meta:
        model = TagTable
        fields = [
            "id",
            "name",
            "repo",
            "owner",
            "description",
            "purpose",
            "polarity",
            "key_dimensions",
            "visibility",
            "row_count",
            "version",
            "created",
            "updated",
            "columns",
            "url",
            "page",
        ]

    def get_columns(self, obj: TagTable) -> list[dict]:
        columns = sorted(obj.columns.all(), key=lambda c: (c.position, c.pk))  # uses the list's prefetch
        return TagColumnSerializer(columns, many=True).data

    def get_url(self, obj: TagTable) -> str:
        return reverse("api:tagtable-detail", args=[obj.pk])

    def get_page(self, obj: TagTable) -> str:
        return reverse("tagging:tagtable", args=[obj.pk])


class TagTableCreateSerializer(serializers.Serializer):
    name = serializers.CharField()
    repo = serializers.CharField(help_text="label of a Butler repo")
    key_dimensions = serializers.ListField(child=serializers.CharField(), help_text="e.g. ['exposure']")
    polarity = serializers.ChoiceField(choices=Polarity.choices, default=Polarity.NEUTRAL)
    purpose = serializers.CharField(required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    visibility = serializers.ChoiceField(choices=SetVisibility.choices, default=SetVisibility.PRIVATE)
    columns = TagColumnSpecSerializer(many=True, required=False, default=list)
    share_with = ShareEntrySerializer(many=True, required=False, default=list)


class TagTableUpdateSerializer(serializers.Serializer):
    version = api.IntegerField(help_text="the version your change is based on (409 if it is stale)")
    name = serializers.CharField(required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    purpose = serializers.CharField(required=False, allow_blank=True)
    polarity = serializers.ChoiceField(choices=Polarity.choices, required=False)
    visibility = serializers.ChoiceField(choices=SetVisibility.choices, required=False)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class RowsUpsertSerializer(serializers.Serializer):
    rows = serializers.ListField(
        child=serializers.DictField(),
        help_text="each: the data ID (dimensions or alternate keys) and values by column name",
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    drop_invalid = serializers.BooleanField(default=False)
    on_existing = serializers.ChoiceField(
        choices=[("update", "update"), ("refuse", "refuse")],
        default="update",
        help_text="a row whose data ID already has one: update it (default), or refuse (adding rows): "
        "409 with the stored rows (code row_exists) and nothing stored",
    )


class RowsDeleteSerializer(serializers.Serializer):
    keys = serializers.ListField(child=serializers.CharField(), help_text="canonical row keys")
    reason = serializers.CharField()


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV or JSON: data-ID columns and one column per table column")
    format = serializers.ChoiceField(choices=[("", "from the name"), ("csv", "csv"), ("json", "json")], default="")
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    drop_invalid = serializers.BooleanField(default=False)


class UpsertResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    dropped = serializers.IntegerField()
    dropped_report = serializers.ListField(child=serializers.DictField())
    rows_read = serializers.IntegerField()
    keys = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.DictField(), required=False)


class TagRowSerializer(serializers.Serializer):
    key = serializers.CharField()
    data_id = serializers.DictField()
    values = serializers.DictField()
    updated = serializers.DateTimeField()
    updated_by = serializers.CharField(allow_null=True)


class TagRowChangeSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username")
    changes = serializers.SerializerMethodField()

    class Meta:
        model = TagRowChange
        fields = ["id", "row_key", "action", "old", "new", "changes", "reason", "user", "timestamp"]

    def get_changes(self, obj: TagRowChange) -> list[dict]:
        names = self.context.get("names", {})
        return [{"column": n, "old": o, "new": v} for n, o, v in selectors.changes_by_name(obj, names)]


class TagTableEventSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username")
    column = serializers.CharField(source="column.name", allow_null=True, default=None)

    class Meta:
        model = TagTableEvent
        fields = ["id", "action", "column", "detail", "reason", "user", "timestamp"]


# --- downloads -----------------------------------------------------------------------------------------


def tagtable_download_response(table: TagTable, fmt: str, include_retired: bool = False) -> StreamingHttpResponse:
    columns = selectors.tagtable_columns(table=table, include_retired=include_retired)
    dims = list(table.key_dimensions)
    names = [c.name for c in columns]
    rows = selectors.tagtable_export_rows(table=table, columns=columns)

    def as_csv() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([*dims, *names])
        for n, (ids, values) in enumerate(rows, start=1):
            writer.writerow(
                [*ids, *("" if v is None else str(v).lower() if isinstance(v, bool) else v for v in values)]
            )
            if n % 2000 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    def as_json() -> Iterator[str]:
        yield "["
        for n, (ids, values) in enumerate(rows):
            item = {"data_id": dict(zip(dims, ids, strict=True)), "values": dict(zip(names, values, strict=True))}
            yield ("" if n == 0 else ",\n") + json.dumps(item)
        yield "]\n"

    if fmt == "csv":
        response = StreamingHttpResponse(as_csv(), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(as_json(), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{table.name}.{fmt}"'
    return response


# --- views ---------------------------------------------------------------------------------------------


def _table_id(request: Request, pk: str) -> int:
    """The id of a table ``request.user`` may change: 404 if they may not see it, 403 if they may only look,
    checked before the body is (a write on nothing is a 404, whatever was sent)."""
    return selectors.access_tagtable(request.user, pk, "change").pk


class TagTableViewSet(viewsets.GenericViewSet):
    """Tag tables: user tables with a declared schema, keyed by data IDs checked against a Butler repo."""

    queryset = TagTable.objects.none()
    serializer_class = TagTableSerializer
    pagination_class = Pagination
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        parameters=[
            OpenApiParameter("repo", str),
            OpenApiParameter("polarity", str, enum=Polarity.values),
            OpenApiParameter("owner", str),
            OpenApiParameter("q", str),
            OpenApiParameter("name", str),
        ]
    )
    @paginated
    def list(self, request: Request) -> Response:
        p = request.query_params
        qs = selectors.tagtable_list(
            user=request.user,
            repo_label=p.get("repo"),
            polarity=p.get("polarity"),
            owner=p.get("owner"),
            q=p.get("q", ""),
            name=p.get("name"),
        ).prefetch_related("columns")
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(TagTableSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(TagTableSerializer(selectors.access_tagtable(request.user, pk)).data)

    @extend_schema(request=TagTableCreateSerializer, responses={201: TagTableSerializer})
    def create(self, request: Request) -> Response:
        serializer = TagTableCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        table = services.tagtable_create(
            user=request.user,
            repo_label=d["repo"],
            name=d["name"],
            key_dimensions=d["key_dimensions"],
            columns=d["columns"],
            polarity=d["polarity"],
            purpose=d["purpose"],
            description=d["description"],
            visibility=d["visibility"],
            share_with=d["share_with"],
        )
        return Response(TagTableSerializer(table).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TagTableUpdateSerializer, responses={200: TagTableSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        table_id = _table_id(request, pk)
        serializer = TagTableUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = dict(serializer.validated_data)
        version, reason = d.pop("version"), d.pop("reason")
        table = services.tagtable_update(
            user=request.user, table_id=table_id, version=version, changes=d, reason=reason
        )
        return Response(TagTableSerializer(table).data)

    @extend_schema(
        methods=["GET"],
        parameters=[OpenApiParameter("q", str, description="text in the row key")],
        responses=TagRowSerializer(many=True),
    )
    @extend_schema(
        methods=["POST"],
        request=RowsUpsertSerializer,
        responses={200: UpsertResultSerializer, 409: OpenApiTypes.OBJECT},
    )
    @extend_schema(methods=["DELETE"], request=RowsDeleteSerializer, responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get", "post", "delete"])
    @paginated
    def rows(self, request: Request, pk: str) -> Response:
        """List rows (GET), add or change rows (POST: strict unless ``drop_invalid``; ``on_existing=refuse`` answers
        409 with the stored rows instead of changing them), delete rows (DELETE)."""
        if request.method == "GET":
            table = selectors.access_tagtable(request.user, pk)
            columns = selectors.tagtable_columns(table=table)
            dims = list(table.key_dimensions)
            paginator = Pagination()
            page = paginator.paginate_queryset(
                selectors.tagtable_rows(table=table, q=request.query_params.get("q", "")), request, view=self
            )
            return paginator.get_paginated_response([selectors.row_dict(r, dims, columns) for r in page])
        table_id = _table_id(request, pk)
        if request.method == "DELETE":
            serializer = RowsDeleteSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            deleted = services.tag_rows_delete(
                user=request.user,
                table_id=table_id,
                keys=serializer.validated_data["keys"],
                reason=serializer.validated_data["reason"],
            )
            return Response({"deleted": deleted})
        serializer = RowsUpsertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        result = services.tag_rows_upsert(
            user=request.user,
            table_id=table_id,
            rows=d["rows"],
            reason=d["reason"],
            drop_invalid=d["drop_invalid"],
            on_existing=d["on_existing"],
        )
        table = TagTable.objects.get(pk=table_id)
        columns = selectors.tagtable_columns(table=table)
        dims = list(table.key_dimensions)
        stored = selectors.tagtable_rows(table=table).filter(key__in=result.keys[:200])
        return Response({**result.as_dict(), "rows": [selectors.row_dict(r, dims, columns) for r in stored]})

    @extend_schema(request=TagColumnAddSerializer, responses={201: TagColumnSerializer})
    @action(detail=True, methods=["post"])
    def columns(self, request: Request, pk: str) -> Response:
        """Add a column (no migration: values are stored by the column's stable key)."""
        table_id = _table_id(request, pk)
        serializer = TagColumnAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = dict(serializer.validated_data)
        version, reason = d.pop("version", None), d.pop("reason")
        column = services.tag_column_add(user=request.user, table_id=table_id, spec=d, version=version, reason=reason)
        return Response(TagColumnSerializer(column).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TagColumnChangeSerializer, responses=TagColumnSerializer)
    @action(detail=True, methods=["patch"], url_path=r"columns/(?P<column>[A-Za-z0-9_]+)")
    def column(self, request: Request, pk: str, column: str) -> Response:
        """Rename a column, change its unit, description or required flag, add enum values, retire or
        bring it back (values are always kept). ``column`` is its key (c3) or name."""
        table = selectors.access_tagtable(request.user, pk, "change")
        column = selectors.tagtable_column(table=table, key_or_name=column).key  # 404 if it has no such column
        serializer = TagColumnChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = dict(serializer.validated_data)
        version, reason, retired = d.pop("version", None), d.pop("reason"), d.pop("retired", None)
        table_id = table.pk
        result = None
        if d:
            result = services.tag_column_update(
                user=request.user, table_id=table_id, column_key=column, changes=d, version=version, reason=reason
            )
            version = None  # the first change bumped it
        if retired is not None:
            result = services.tag_column_retire(
                user=request.user,
                table_id=table_id,
                column_key=result.key if result else column,
                retire=retired,
                version=version,
                reason=reason,
            )
        if result is None:
            raise ValidationError({"column": ["Say what to change."]})
        return Response(TagColumnSerializer(result).data)

    @extend_schema(
        parameters=[OpenApiParameter("key", str, description="one row's key")],
        responses=TagRowChangeSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    @paginated
    def history(self, request: Request, pk: str) -> Response:
        """Every change of the rows (or of one row, ``?key=``): who, when, old and new values, why."""
        table = selectors.access_tagtable(request.user, pk)
        names = {c.key: c.name for c in table.columns.all()}
        qs = selectors.tagtable_row_changes(table=table, key=request.query_params.get("key"))
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(TagRowChangeSerializer(page, many=True, context={"names": names}).data)

    @extend_schema(responses=TagTableEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    @paginated
    def events(self, request: Request, pk: str) -> Response:
        """Changes of the table itself: creation, metadata, schema, sharing."""
        table = selectors.access_tagtable(request.user, pk)
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.tagtable_events(table=table), request, view=self)
        return paginator.get_paginated_response(TagTableEventSerializer(page, many=True).data)

    @extend_schema(request=TagTableShareSerializer, responses=TagTableSerializer)
    @action(detail=True, methods=["post"])
    def share(self, request: Request, pk: str) -> Response:
        table_id = _table_id(request, pk)
        serializer = TagTableShareSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        table = services.tagtable_share(
            user=request.user,
            table_id=table_id,
            username=d["username"] or None,
            group=d["group"] or None,
            permission=d["permission"],
            grant=d["grant"],
        )
        return Response(TagTableSerializer(table).data)

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses=UpsertResultSerializer)
    @action(detail=True, methods=["post"])
    def upload(self, request: Request, pk: str) -> Response:
        """Bulk upload of rows from CSV or JSON: strict (nothing stored if one row is bad) unless
        ``drop_invalid``; problems name the line or index and the key or column."""
        table_id = _table_id(request, pk)
        serializer = UploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        upload = d["file"]
        result = services.tag_rows_upload(
            user=request.user,
            table_id=table_id,
            stream=upload,
            filename=upload.name or "upload",
            format=d["format"] or None,
            reason=d["reason"],
            drop_invalid=d["drop_invalid"],
        )
        return Response(result.as_dict())

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=["csv", "json"], description="default csv"),
            OpenApiParameter("retired", bool, description="include retired columns"),
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/json"): {"type": "array", "items": {"type": "object", "additionalProperties": {}}},
        },
    )
    @action(detail=True, methods=["get"], content_negotiation_class=FileFormatNegotiation)
    def download(self, request: Request, pk: str):
        table = selectors.access_tagtable(request.user, pk)
        fmt = (request.query_params.get("format") or "csv").lower()
        if fmt not in ("csv", "json"):
            raise ValidationError({"format": ["Use csv or json."]})
        return tagtable_download_response(table, fmt, request.query_params.get("retired") in ("1", "true"))
