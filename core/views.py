"""Pages that belong to no app: home, API token, system status, health check."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views import defaults
from django.views.decorators.http import require_http_methods
from rest_framework.authtoken.models import Token

from campaigns.models import WorkerHeartbeat

from .health import broker_location
from .tokens import token_expired, token_expires, token_revoke


def home(request: HttpRequest) -> HttpResponse:
    return redirect("campaigns:list")


@require_http_methods(["GET", "POST"])
def token_page(request: HttpRequest) -> HttpResponse:
    """Create, replace or revoke the user's API token. A new one is shown once, right after creation."""
    token = Token.objects.filter(user=request.user).first()
    new_key = None
    if request.method == "POST" and request.POST.get("action") == "revoke":
        if token_revoke(user=request.user):
            messages.success(request, "Your API token was revoked: scripts using it can no longer log in.")
        return redirect("token-page")
    if request.method == "POST":
        token_revoke(user=request.user)
        token = Token.objects.create(user=request.user)
        new_key = token.key
        messages.success(request, "A new API token was created. Copy it now: it will not be shown again.")
    context = {
        "token": token,
        "new_key": new_key,
        "expires": token_expires(token) if token else None,
        "expired": bool(token and token_expired(token)),
    }
    return render(request, "core/token.html", context)


@require_http_methods(["GET", "POST"])
def status_page(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        from campaigns.tasks import heartbeat

        heartbeat.delay()
        messages.info(request, "A heartbeat task was sent; a running worker records it within seconds.")
        return redirect("status")
    context = {
        "database": connection.vendor,
        "broker": broker_location(settings.CELERY_BROKER_URL),
        "heartbeats": WorkerHeartbeat.objects.all()[:20],
        "debug": settings.DEBUG,
    }
    return render(request, "core/status.html", context)


# --- error handlers (config/urls.py): JSON under /api/, the site's pages elsewhere ----------------------------
# Nothing from the exception reaches the client but our own 403/404 messages (which never say more than "no
# such X you may see"): no traceback, no path, with DEBUG off. Django logs the 500s for the operators.

_API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(_API_PREFIX)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception, template_name="400.html")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        message = str(exception) if isinstance(exception, PermissionDenied) and str(exception) else None
        return JsonResponse({"detail": message or "You do not have permission to perform this action."}, status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(
            {"detail": "A server error occurred. It was logged for the people who run this site."}, status=500
        )
    return defaults.server_error(request)
