"""Login is required for every page except the login page, static files and the API.

The API answers 401/403 itself (DRF), so that scripts get JSON, not a redirect.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse

# Probes and Prometheus scrapes come without a session (/metrics has its own token, see core.monitoring).
_OPEN_PREFIXES = ("/api/", "/static/", "/healthz", "/readyz", "/metrics")


class LoginRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if (
            not request.user.is_authenticated
            and not path.startswith(_OPEN_PREFIXES)
            and path != reverse(settings.LOGIN_URL)
        ):
            return redirect_to_login(request.get_full_path())
        return self.get_response(request)
