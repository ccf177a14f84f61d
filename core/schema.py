"""The OpenAPI schema (drf-spectacular) as the API really behaves, for every view without per-view repetition.

- **Errors**: every operation documents the JSON errors it can answer: 400 (bad input, unknown query
  parameters), 401 and 403 (authentication, permission), 404 (an object it names does not exist or is not
  yours to see; a page past the last), 409 on writes (a stale version, or a state that does not allow it),
  429 when a throttle applies. Their body is ``Error``: ``detail`` and/or the fields at fault.
- **Ids** in paths (``core.api.Router``) are integers of at most 64 bits, not strings.
- **Pagination**: a list is documented as paginated only when its handler really pages (``@paginated``, or
  DRF's own ``list`` of a ``ListModelMixin`` view), never because the view happens to have a paginator.
- **Filters**: a view's FilterSet is documented on its ``list`` only, not on its other actions.

The documented query parameters are also the ones an operation accepts (``core.permissions.KnownQueryParameters``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework.mixins import ListModelMixin

from .converters import ID_MAX, ID_REGEX

F = TypeVar("F", bound=Callable[..., Any])

ERROR_SCHEMA = {
    "type": "object",
    "description": "An error: ``detail`` says what went wrong; a bad input names each field (or query "
    "parameter) at fault with its messages.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {},
}

_ERROR_DESCRIPTIONS = {
    "400": "Bad input: a field or query parameter at fault (an unknown query parameter included).",
    "401": "Not authenticated.",
    "403": "Authenticated but not allowed (science users read only; private objects of others).",
    "404": "No such object that you may see (or a page past the last one).",
    "409": "Conflict: the change was based on a stale version, or the object is not in a state that allows it.",
    "429": "Too many requests: wait for the number of seconds in Retry-After.",
}


def paginated(handler: F) -> F:
    """Mark a view method that answers a page (``count``, ``next``, ``previous``, ``results``) with the view's
    ``pagination_class``, so the schema documents the page and its ``page``/``page_size`` parameters."""
    handler.paginated = True  # type: ignore[attr-defined]
    return handler


class AutoSchema(SpectacularAutoSchema):
    def _handler(self) -> Any:
        action = getattr(self.view, "action", None)
        if action:
            return getattr(self.view, action, None)
        return getattr(self.view, self.method.lower(), None)

    def _really_paginates(self) -> bool:
        marked = getattr(self._handler(), "paginated", None)
        if marked is not None:
            return bool(marked)
        # DRF's own generic list (a ListAPIView, or a viewset's inherited ``list``) pages with the view's paginator.
        action = getattr(self.view, "action", None)
        generic_list = action == "list" or (action is None and self.method == "GET" and "{" not in self.path)
        return isinstance(self.view, ListModelMixin) and generic_list and type(self.view).list is ListModelMixin.list

    def _resolve_path_parameters(self, variables):
        parameters = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            # An id routed by core.api.Router (digits, at most 19) is an integer a database id can be.
            if parameter.get("schema", {}).get("pattern") == f"^{ID_REGEX}$":
                parameter["schema"] = {"type": "integer", "format": "int64", "minimum": 0, "maximum": ID_MAX}
        return parameters

    def _get_paginator(self):
        return super()._get_paginator() if self._really_paginates() else None

    def get_filter_backends(self) -> list[Any]:
        action = getattr(self.view, "action", None)
        if action is not None and action != "list":
            return []
        return super().get_filter_backends()

    def _error_ref(self) -> dict:
        component = ResolvedComponent(name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA)
        self.registry.register_on_missing(component)
        return component.ref

    def _error_codes(self) -> list[str]:
        # 404: an object named in the path, the body or the query (a campaign, a repo, a template) that does not
        # exist or that you may not see, or a page past the last. 409: a write based on a stale version, or on
        # an object whose state does not allow it.
        codes = ["400", "401", "403", "404"]
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes.append("409")
        if getattr(self.view, "throttle_classes", None):
            codes.append("429")
        return codes

    def _get_response_bodies(self, direction="response") -> dict:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self._error_codes():
            responses.setdefault(
                code,
                {
                    "content": {"application/json": {"schema": self._error_ref()}},
                    "description": _ERROR_DESCRIPTIONS[code],
                },
            )
        for code, response in responses.items():
            # A code a view declared itself (409 with a free-form object) gets the shared error body and description.
            if code in _ERROR_DESCRIPTIONS:
                response["description"] = response.get("description") or _ERROR_DESCRIPTIONS[code]
                response["content"] = {"application/json": {"schema": self._error_ref()}}
        return responses
