"""Permissions every API view has by default (settings.REST_FRAMEWORK): a query parameter an operation does not
document is a 400 naming it.

Kept apart from core.api: DRF imports its default permission classes while rest_framework.views is still being
imported, so this module must not import DRF's views (or anything that does).
"""

from __future__ import annotations

import functools
import re

from rest_framework import exceptions
from rest_framework.permissions import BasePermission

_METHODS = ("get", "put", "post", "patch", "delete")
ALWAYS_KNOWN = frozenset({"format"})  # DRF's renderer choice (``?format=json``), taken by every view


@functools.cache
def _documented_routes() -> list[tuple[re.Pattern, dict[str, frozenset[str]]]]:
    """Each documented path as a regex, with the query parameters each of its methods documents: literal paths
    first (``/campaigns/import/`` before ``/campaigns/{id}/``). Built once per process from the schema."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    routes = []
    for path, item in schema["paths"].items():
        parts = re.split(r"\{[^}]+\}", path)
        regex = re.compile("^" + "[^/]+".join(re.escape(part) for part in parts) + "$")
        methods = {
            method.upper(): frozenset(p["name"] for p in operation.get("parameters", []) if p["in"] == "query")
            for method, operation in item.items()
            if method in _METHODS
        }
        routes.append((len(parts), regex, methods))
    routes.sort(key=lambda route: route[0])
    return [(regex, methods) for _, regex, methods in routes]


def documented_query_parameters(path: str, method: str) -> frozenset[str] | None:
    """The query parameters the schema documents for ``method path``; None if the schema does not describe it."""
    method = "GET" if method == "HEAD" else method
    for regex, methods in _documented_routes():
        if regex.match(path):
            return methods.get(method)
    return None


class KnownQueryParameters(BasePermission):
    """A query parameter the operation does not document is a 400 naming it, never silently ignored (a typo such
    as ``?stauts=running`` would otherwise answer every campaign).

    The known parameters are those the OpenAPI schema documents for the operation (its FilterSet, its
    ``@extend_schema(parameters=...)``, its pagination), plus ``format``; so documenting a parameter is what makes
    it accepted. Runs after IsAuthenticated (an anonymous caller is refused first); a default permission of
    every API view (settings.REST_FRAMEWORK), so a new view needs nothing more than an honest schema.
    """

    def has_permission(self, request, view) -> bool:
        given = set(request.query_params.keys())
        if not given:
            return True
        known = documented_query_parameters(request.path_info, request.method)
        if known is None:
            return True  # not an operation the schema describes (the schema view itself, OPTIONS)
        unknown = sorted(given - known - ALWAYS_KNOWN)
        if unknown:
            takes = ", ".join(sorted(known)) or "no query parameters"
            raise exceptions.ValidationError(
                {
                    name: [f"Unknown query parameter for {request.method} {request.path_info}; it takes: {takes}."]
                    for name in unknown
                }
            )
        return True
