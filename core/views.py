"""Pages that belong to no app: home, API token, system status, health check."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from rest_framework.authtoken.models import Token

from campaigns.models import WorkerHeartbeat

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


def _broker_label() -> str:
    url = settings.CELERY_BROKER_URL
    if url.startswith("sqla+"):
        return "SQLAlchemy transport (no server)"
    if url.startswith("memory"):
        return "in-process memory"
    return url.split("://", 1)[0] + " (" + url.split("@")[-1] + ")"


@require_http_methods(["GET", "POST"])
def status_page(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        from campaigns.tasks import heartbeat

        heartbeat.delay()
        messages.info(request, "A heartbeat task was sent; a running worker records it within seconds.")
        return redirect("status")
    context = {
        "database": connection.vendor,
        "broker": _broker_label(),
        "heartbeats": WorkerHeartbeat.objects.all()[:20],
        "debug": settings.DEBUG,
    }
    return render(request, "core/status.html", context)


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True, "database": connection.vendor})
