"""Login is required for every page except the login page, static files and the API.

The API answers 401/403 itself (DRF), so that scripts get JSON, not a redirect.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import SuspiciousOperation
from django.http import JsonResponse
from django.urls import reverse

_OPEN_PREFIXES = ("/api/", "/static/")
# Probes and Prometheus scrapes come without a session (/metrics has its own token, see core.monitoring). Exact
# paths, not prefixes: /metrics/... are the dashboards, which need a login.
_OPEN_PATHS = {"/healthz", "/readyz", "/metrics"}


class LoginRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if (
            not request.user.is_authenticated
            and not path.startswith(_OPEN_PREFIXES)
            and path not in _OPEN_PATHS
            and path != reverse(settings.LOGIN_URL)
        ):
            return redirect_to_login(request.get_full_path())
        return self.get_response(request)


class NulCharacterInQuery(SuspiciousOperation):
    """A NUL character in a query parameter: no text of this app holds one, and PostgreSQL refuses to compare
    with one (a database error, a 500, for any filter that reaches SQL)."""


class RejectNulCharacters:
    """400 (the site's page, or JSON under /api/) for a query string with a NUL character, before any view or
    filter passes it to the database. Form and JSON fields refuse NUL themselves (Django and DRF CharFields)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        bad = sorted({k for k, vs in request.GET.lists() if "\x00" in k or any("\x00" in v for v in vs)})
        if bad or "\x00" in request.path_info:
            if request.path_info.startswith("/api/"):
                names = [k.replace("\x00", "\\x00") for k in bad] or ["detail"]
                return JsonResponse({name: ["Null characters are not allowed."] for name in names}, status=400)
            raise NulCharacterInQuery("NUL character in the URL or its query string")
        return self.get_response(request)
