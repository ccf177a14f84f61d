"""API plumbing shared by every app: the router, pagination and JSON errors that name the field."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions, serializers, status
from rest_framework import pagination as drf_pagination
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.views import exception_handler as drf_exception_handler

from .converters import ID_REGEX
from .errors import ConflictError, InputError
from .filters import INT64_MAX, INT64_MIN

logger = logging.getLogger(__name__)


class IntegerField(serializers.IntegerField):
    """DRF's IntegerField, bounded (by default) to what a database column can hold, a signed 64-bit integer:
    a larger number in a JSON body is a 400 naming the field, not a database error. Pass narrower bounds for
    32-bit columns. Every integer a request serializer takes uses it (tests/core/test_api_bad_input.py)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", INT64_MIN)
        kwargs.setdefault("max_value", INT64_MAX)
        super().__init__(**kwargs)


INT32_MAX = 2**31 - 1


class Router(DefaultRouter):
    """DRF's router, with object ids in URLs limited to what a database id can be (digits, at most 19):
    ``/campaigns/abc/`` or a 23-digit id is no route, so a 404 (never a 500 from ``int()`` or the database).
    A viewset keyed by something else (a label, a UUID) sets its own ``lookup_value_regex``."""

    def get_lookup_regex(self, viewset, lookup_prefix=""):
        if getattr(viewset, "lookup_value_regex", None) is None and getattr(viewset, "lookup_field", "pk") == "pk":
            kwarg = getattr(viewset, "lookup_url_kwarg", None) or "pk"
            return f"(?P<{lookup_prefix}{kwarg}>{ID_REGEX})"
        return super().get_lookup_regex(viewset, lookup_prefix)


class SelectorFilters(DjangoFilterBackend):
    """The view's FilterSet, documented in the schema (and so accepted as query parameters) but not applied by
    DRF: the selector the view calls applies it, with the permission gate (CONVENTIONS 3, 6)."""

    def filter_queryset(self, request, queryset, view):
        return queryset


def query_int(request, name: str, *, default: int, minimum: int, maximum: int | None = None) -> int:
    """A whole-number query parameter: absent means ``default``; not a whole number, or below ``minimum``, is a
    400 naming it (never quietly replaced by the default); above ``maximum`` is cut to it (the page says so in
    its ``next`` link)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) < minimum:
        raise exceptions.ValidationError({name: [f"A whole number of at least {minimum}, not {raw[:24]!r}."]})
    value = int(text)
    return min(value, maximum) if maximum is not None else value


class Pagination(PageNumberPagination):
    """``page`` (from 1) and ``page_size`` (1 to 500, default 50). A page past the last is a 404; a page or page
    size that is not a whole number of at least 1 is a 400."""

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        return query_int(request, self.page_size_query_param, default=self.page_size, minimum=1, maximum=500)

    def get_page_number(self, request, paginator):
        if request.query_params.get(self.page_query_param) in self.last_page_strings:
            return paginator.num_pages
        return query_int(request, self.page_query_param, default=1, minimum=1)

    def get_schema_operation_parameters(self, view):
        page, size = super().get_schema_operation_parameters(view)
        page["schema"] = {"type": "integer", "minimum": 1}
        size["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return [page, size]


class LimitOffsetPagination(drf_pagination.LimitOffsetPagination):
    """``limit`` (default 50, at most ``max_limit``) and ``offset`` (default 0), as Rubin's exposure log pages
    its messages; values that are not whole numbers, a limit below 1 or a negative offset are a 400."""

    default_limit = 50
    max_limit = 5000

    def get_limit(self, request):
        return query_int(request, self.limit_query_param, default=self.default_limit, minimum=1, maximum=self.max_limit)

    def get_offset(self, request):
        return query_int(request, self.offset_query_param, default=0, minimum=0)

    def get_schema_operation_parameters(self, view):
        limit, offset = super().get_schema_operation_parameters(view)
        limit["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_limit, "default": self.default_limit}
        offset["schema"] = {"type": "integer", "minimum": 0, "default": 0}
        return [limit, offset]


def _validation_payload(exc: DjangoValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        return {field: [str(m) for e in errors for m in e.messages] for field, errors in exc.error_dict.items()}
    return {"non_field_errors": list(exc.messages)}


def exception_handler(exc, context):
    """Turn service-layer errors into JSON that names the field at fault."""
    if isinstance(exc, ConflictError):
        return Response({"detail": str(exc), "code": "stale_version", **exc.extra}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, InputError):
        return Response(exc.as_payload(), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        return Response(_validation_payload(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):
        # DRF reads JSON and form bodies through request.body, which Django refuses past the limit.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            {"detail": f"The request body is larger than {limit:,} bytes, the most accepted (CM_REQUEST_MAX_BYTES)."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, DataError):
        # The last line of defence: a value the database refused (a NUL character in text, a number beyond its
        # column) is bad input, not a server error. The serializers and filters should have said so first.
        logger.warning("A request value was refused by the database: %s", exc)
        return Response(
            {
                "detail": "A value in the request cannot be stored or searched for (a NUL character, or a number "
                "too large for its field)."
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, Http404):
        # Our 404 messages never say more than "no such X you may see", so they are safe to pass on.
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    return drf_exception_handler(exc, context)
