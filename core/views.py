"""Pages that belong to no app: home, API token, system status, health check."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from rest_framework.authtoken.models import Token

from campaigns.models import WorkerHeartbeat

from .health import broker_location


def home(request: HttpRequest) -> HttpResponse:
    return redirect("campaigns:list")


@require_http_methods(["GET", "POST"])
def token_page(request: HttpRequest) -> HttpResponse:
    """Create or replace the user's API token. It is shown once, right after creation."""
    token = Token.objects.filter(user=request.user).first()
    new_key = None
    if request.method == "POST":
        if token is not None:
            token.delete()
        token = Token.objects.create(user=request.user)
        new_key = token.key
        messages.success(request, "A new API token was created. Copy it now: it will not be shown again.")
    return render(request, "core/token.html", {"token": token, "new_key": new_key})


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
